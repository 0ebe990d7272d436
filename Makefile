# Every target creates .venv with the pinned dependencies if it is missing, with the newest supported
# interpreter found (python3.13 > python3.12 > python3.11) unless PYTHON=... is given.
SUPPORTED_PYTHONS := python3.13 python3.12 python3.11
PYTHON ?= $(firstword $(foreach p,$(SUPPORTED_PYTHONS),$(if $(shell $(p) -c '' 2>/dev/null && echo ok),$(p))))
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The platform's process settings (RAY_USAGE_STATS_ENABLED, FEAST_USAGE, ...) for every target, printed by
# mlray/process_env.py, where all of them live (nothing before the venv exists).
$(foreach setting,$(shell test -x $(PY) && $(PY) -m mlray.process_env),$(eval export $(setting)))

.PHONY: venv test test-fast demo bench docs cluster-up cluster-down k8s-render k8s-validate image-hashes lock clean security-doc \
	prometheus-tools demo-preprocess demo-features demo-train demo-solve demo-serve demo-query demo-batch serve

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || test -n "$(PYTHON)" || { echo "mlray needs Python 3.11, 3.12 or 3.13:" \
		"none of $(SUPPORTED_PYTHONS) runs here; install one, or give make PYTHON=/path/to/python3.1x"; exit 1; }
	@test -x $(PY) || { echo "Creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing pinned dependencies into $(VENV) (first time: a few minutes, about 2.4 GB)..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]' 2>&1 \
		| grep -v "^WARNING: Location" || true
	@$(PY) -c "import ray, torch, ortools, mlflow, feast, gcsfs" \
		|| { echo "dependency install failed"; exit 1; }
	@touch $(STAMP)

# promtool and prometheus (Debian's prometheus package) for the alert-rule and observability tests: installed
# when missing and this runs as root (as CI does); elsewhere those tests skip and name the install command.
prometheus-tools:
	@command -v promtool >/dev/null || { test "$$(id -u)" = 0 && command -v apt-get >/dev/null \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus >/dev/null; } \
		|| echo "promtool not installed: its tests will skip"

test: venv prometheus-tools
	$(PY) -m pytest

test-fast: venv prometheus-tools
	$(PY) -m pytest -m "not slow"

demo: venv
	$(PY) -m jobs.demo --config configs/demo.yaml

# The demo's steps one at a time, in this order, on local disk and SQLite MLflow (no emulator).
# SUBMIT=1 runs each through `ray job submit` on the cluster of `make cluster-up` (same machine,
# so the job runs in this folder and finds the files the previous step wrote).
RAY_DASHBOARD ?= http://127.0.0.1:8265
SOLVE_INSTANCES ?= jsp/ft06 cvrp/E-n13-k4.vrp   # shipped instances by name (mlray.optimize.instances)
ifdef SUBMIT
run = RAY_AUTH_MODE=token $(VENV)/bin/ray job submit --address $(RAY_DASHBOARD) -- sh -c 'cd $(CURDIR) && $(1)'
else
run = $(1)
endif
job = $(call run,$(CURDIR)/$(PY) -m $(1))

demo-preprocess: venv
	$(call job,jobs.preprocess --config configs/preprocess.yaml)

demo-features: venv
	$(call job,jobs.materialize --config configs/features.yaml)

demo-train: venv
	$(call job,jobs.train --config configs/train.yaml --set training.num_epochs=5)

demo-solve: venv
	$(foreach instance,$(SOLVE_INSTANCES),$(call job,jobs.optimize --config configs/optimize.yaml \
		--set problem.path=$(instance) --set solver.time_limit=10 --set run_name=demo-$(notdir $(instance))) &&) true

# Locally: serves in the foreground until Ctrl-C (query from another terminal). SUBMIT=1: deploys and returns.
demo-serve: venv
	$(call run,$(CURDIR)/$(VENV)/bin/serve run $(if $(SUBMIT),--non-blocking) serve_apps.config)

demo-query: venv
	$(PY) -m mlray.serve.api.client http://127.0.0.1:8000 $(if $(API_KEY),--api-key $(API_KEY))

# The shipped serving setup, as clusters/rayservice.yaml runs it: Ray's HAProxy on :8000 in front of the
# replicas' direct-ingress ports, with serving's process env (mlray/process_env.py, Serve's part from
# mlray/serve/cluster_env.py; foreground until Ctrl-C).
# That env only acts when this `serve run` starts Ray itself (no RAY_ADDRESS, no `ray start` cluster
# recorded in /tmp/ray). serve_apps/config.yaml binds 0.0.0.0:8000, so API keys are required:
#   MLRAY_SERVE_API_KEYS=<key> make serve        then: make demo-query API_KEY=<key>
# (demo-serve stays the keyless loopback demo through Serve's Python proxy: HAProxy mode makes Serve
# bind all interfaces, where the app refuses to run without keys.)
serve: venv
	env $$($(PY) -m mlray.process_env serve) $(VENV)/bin/serve run serve_apps/config.yaml

demo-batch: venv
	$(call job,jobs.batch_predict --config configs/batch_predict.yaml)

# docs/security.md from the probes the security tests make for real
security-doc: venv
	$(PY) -m tests.security_report

bench: venv
	$(PY) -m bench --docs

# The generated parts of the docs: the configuration reference (from the config models) and the
# benchmark tables (from bench/results/); tests fail when either drifts.
docs: venv
	$(PY) -m mlray.config.reference --write docs/configuration.md
	$(PY) -c 'from bench.__main__ import update_doc; update_doc()'

# An mlflow server on :5000 (runs/mlflow.db) and a Ray head; every job on it gets absolute storage
# (runs/storage, or STORAGE_URI=gs://...) and MLflow over HTTP. cluster-down stops both.
cluster-up: venv
	$(PY) -m mlray.cluster up $(if $(STORAGE_URI),--storage-uri $(STORAGE_URI))

cluster-down: venv
	$(PY) -m mlray.cluster down

# KubeRay manifests in clusters/, rendered from the configs (see docs/kuberay.md)
k8s-render: venv
	$(PY) -m mlray.kuberay render --out clusters/

k8s-validate: venv
	$(PY) -m mlray.kuberay validate clusters/

# The image's `pip install --require-hashes` files, from requirements.lock (rerun after `make lock`).
image-hashes: venv
	$(PY) -m mlray.kuberay.image_hashes --variant cpu
	$(PY) -m mlray.kuberay.image_hashes --variant gpu

lock: venv
	$(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements.lock

clean:
	rm -rf $(VENV) runs data .pytest_cache

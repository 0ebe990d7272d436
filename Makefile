# Every target creates .venv with the pinned dependencies if it is missing.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export RAY_USAGE_STATS_ENABLED := 0
export FEAST_USAGE := False
export GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT := false

.PHONY: venv test test-fast demo bench cluster-up cluster-down k8s-render k8s-validate lock clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing pinned dependencies into $(VENV) (first time: a few minutes, about 2.4 GB)..."
	@$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]' 2>&1 \
		| grep -v "^WARNING: Location" || true
	@$(PY) -c "import ray, torch, ortools, mlflow, feast, gcsfs" \
		|| { echo "dependency install failed"; exit 1; }
	@touch $(STAMP)

test: venv
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow"

demo: venv
	$(PY) -m jobs.demo --config configs/demo.yaml

bench: venv
	$(PY) -m bench

cluster-up: venv
	$(PY) -m mlray.cluster up

cluster-down: venv
	$(PY) -m mlray.cluster down

# KubeRay manifests in clusters/, rendered from the configs (see docs/kuberay.md)
k8s-render: venv
	$(PY) -m mlray.kuberay render --out clusters/

k8s-validate: venv
	$(PY) -m mlray.kuberay validate clusters/

lock: venv
	$(PY) -m pip freeze --exclude-editable | sed 's/+cpu$$//' > requirements.lock

clean:
	rm -rf $(VENV) runs data .pytest_cache

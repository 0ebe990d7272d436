"""The Grafana dashboards: committed files are a fresh generation, importable JSON with a templated
datasource, every query names only metrics mlray defines and parses as PromQL (``promtool``)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import yaml

from mlray.metrics import ALL
from mlray.metrics.dashboards import DASHBOARDS, files

from .drawing import concrete

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FOLDER = PROJECT_ROOT / "clusters" / "monitoring" / "dashboards"
REGENERATE = "regenerate: python -m mlray.metrics.dashboards clusters/monitoring/dashboards"
KNOWN_SERIES = {name for spec in ALL for name in spec.series}


def all_queries() -> list[tuple[str, str, str]]:
    return [(dashboard.uid, panel.title, query.expr)
            for dashboard in DASHBOARDS for panel in dashboard.panels for query in panel.queries]


def test_committed_dashboards_are_a_fresh_generation():
    generated = files()
    assert {path.name for path in FOLDER.glob("*.json")} == set(generated), REGENERATE
    for name, text in generated.items():
        assert (FOLDER / name).read_text() == text, f"{name} differs; {REGENERATE}"


def test_one_dashboard_per_workload_and_an_overview_all_on_a_templated_datasource():
    titles = {json.loads(text)["title"] for text in files().values()}
    assert titles == {"mlray / Overview", "mlray / Training", "mlray / Optimization", "mlray / Features",
                      "mlray / Serving"}
    for text in files().values():
        dashboard = json.loads(text)
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
        for panel in dashboard["panels"]:
            assert panel["datasource"] == "${datasource}"
            assert panel["targets"] and all(t["datasource"] == "${datasource}" for t in panel["targets"])


def test_the_serving_dashboard_shows_canary_and_stable_side_by_side():
    serving = next(d for d in DASHBOARDS if d.uid == "mlray-serving")
    compared = [p for p in serving.panels if p.title.startswith("Canary vs stable")]
    assert len(compared) >= 2
    assert all("role" in query.legend for panel in compared for query in panel.queries)


def test_every_query_names_only_defined_metrics():
    for uid, title, expr in all_queries():
        names = set(re.findall(r"\bray_mlray_[a-z_]+", expr))
        assert names, f"{uid} / {title}: no mlray metric in {expr}"
        assert names <= KNOWN_SERIES, f"{uid} / {title}: unknown {sorted(names - KNOWN_SERIES)}"


def test_every_query_is_valid_promql(promtool, tmp_path):
    """Each query as a recording rule: ``promtool check rules`` parses them with Prometheus's parser."""
    rules = [{"record": f"mlray:dashboard_query_{n}", "expr": concrete(expr)}
             for n, (_, _, expr) in enumerate(all_queries())]
    path = tmp_path / "queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = subprocess.run([str(promtool), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout

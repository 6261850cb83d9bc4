"""The shipped alert rules and dashboard, checked by Prometheus's own tool (promtool).

Debian's `prometheus` package ships promtool; `.ci/run` installs it. The
dashboard's queries are run against a real Prometheus in tests/e2e/test_metrics.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "k8s" / "monitoring"


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (apt-get install prometheus; .ci/run does)")
    return path


def rule_groups() -> dict:
    spec = yaml.safe_load((MONITORING / "rules.yaml").read_text())
    assert spec["kind"] == "PrometheusRule"
    return {"groups": spec["spec"]["groups"]}


def dashboard_queries() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboards" / "pokewatch.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]


def test_the_rules_pass_promtool_check(tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_groups()))
    out = subprocess.run([promtool(), "check", "rules", str(tmp_path / "rules.yml")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rule_groups()['groups'][0]['rules'])} rules found" in out.stdout


def test_each_alert_fires_on_a_failing_series_and_stays_quiet_on_a_healthy_one(tmp_path: Path) -> None:
    tests = yaml.safe_load((ROOT / "tests" / "deploy" / "alert_tests.yaml").read_text())
    alerts = {r["alert"] for r in rule_groups()["groups"][0]["rules"]}
    firing = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if c["exp_alerts"]}
    quiet = {c["alertname"] for t in tests["tests"] for c in t["alert_rule_test"] if not c["exp_alerts"]}
    assert firing == alerts and quiet == alerts, ("every alert needs both", alerts - firing, alerts - quiet)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule_groups()))
    shutil.copy(ROOT / "tests" / "deploy" / "alert_tests.yaml", tmp_path / "tests.yml")
    out = subprocess.run([promtool(), "test", "rules", "tests.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0 and "SUCCESS" in out.stdout, out.stdout + out.stderr


def test_the_dashboard_is_a_grafana_configmap_with_the_sidecar_label() -> None:
    kustomization = yaml.safe_load((MONITORING / "kustomization.yaml").read_text())
    (generator,) = kustomization["configMapGenerator"]
    assert generator["options"]["labels"] == {"grafana_dashboard": "1"}
    assert all((MONITORING / f).exists() for f in generator["files"])
    queries = dashboard_queries()
    assert len(queries) >= 12
    for expected in (
        "pokewatch_gateway_requests_total",
        "pokewatch_stream_group_lag_entries",
        "pokewatch_replica_info",
    ):
        assert any(expected in q for q in queries), expected
    for query in queries:  # promtool parses PromQL: a typo fails here, not in Grafana
        out = subprocess.run(
            [promtool(), "check", "rules", "/dev/stdin"],
            input=yaml.safe_dump({"groups": [{"name": "q", "rules": [{"record": "pokewatch:check", "expr": query}]}]}),
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, (query, out.stdout + out.stderr)


def test_every_alert_has_a_section_saying_what_to_do() -> None:
    page = (ROOT / "docs" / "operators" / "alerts.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\w+)$", page, re.MULTILINE))
    alerts = {r["alert"] for r in rule_groups()["groups"][0]["rules"]}
    assert alerts == sections, ("without a section", alerts - sections, "sections of no alert", sections - alerts)


def test_every_alert_points_at_its_section() -> None:
    for rule in rule_groups()["groups"][0]["rules"]:
        assert rule["annotations"]["runbook"] == f"docs/operators/alerts.md#{rule['alert'].lower()}", rule["alert"]

"""Deployment files, checked by tools: Kubernetes schemas, hadolint, checkov.

The tools live in their own venv (`make deploy-tools` -> .venv-deploy):
checkov pins versions of packages Airflow also needs, so it must not share
the project's environment. Without that venv the tests skip, saying so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("POKEWATCH_DEPLOY_TOOLS", ROOT / ".venv-deploy" / "bin"))
KUBERNETES_VERSION = "1.33.0"
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}


def _tool(name: str) -> Path:
    path = TOOLS / name
    if not path.exists():
        pytest.skip(f"{name} not installed: run `make deploy-tools` (creates .venv-deploy)")
    return path


def _documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _manifests() -> list[Path]:
    """Every file of whole Kubernetes resources (kustomizations, overlay patches and Helm values excluded)."""
    out = []
    for path in sorted((ROOT / "k8s").rglob("*.yaml")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name == "kustomization.yaml" or rel.startswith("k8s/overlays/") or rel == "k8s/airflow/values.yaml":
            continue
        out.append(path)
    return out


def test_every_manifest_matches_the_kubernetes_schemas() -> None:
    validate = _tool("kubernetes-validate")
    files = _manifests()
    assert len(files) >= 9
    crds = []
    for path in files:
        for doc in _documents(path):
            assert doc.get("apiVersion") and doc.get("kind"), f"{path}: not a resource"
            if doc["kind"] in KEDA_KINDS:
                crds.append(doc)
    out = subprocess.run(
        [str(validate), "--strict", "-k", KUBERNETES_VERSION, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("ERROR")]
    assert out.returncode == 0 and not errors, out.stdout + out.stderr
    # KEDA's kinds are CRDs (no schema in Kubernetes): check what the scaler needs by hand.
    scaled = {d["metadata"]["name"]: d["spec"] for d in crds if d["kind"] == "ScaledObject"}
    assert set(scaled) == {"model-worker", "challenger-worker"}
    for name, group in (("model-worker", "model"), ("challenger-worker", "shadow")):
        trigger = scaled[name]["triggers"][0]
        assert trigger["type"] == "redis-streams"
        assert trigger["metadata"]["stream"] == "pokewatch:predict" and trigger["metadata"]["consumerGroup"] == group
        assert trigger["authenticationRef"]["name"] in {d["metadata"]["name"] for d in crds}
    # The challenger runs only while a challenger is set (its group exists only then).
    assert scaled["challenger-worker"]["minReplicaCount"] == 0


def test_kustomizations_reference_files_that_exist() -> None:
    for kustomization in (ROOT / "k8s").rglob("kustomization.yaml"):
        spec = yaml.safe_load(kustomization.read_text())
        refs = list(spec.get("resources", [])) + list(spec.get("components", []))
        refs += [p["path"] for p in spec.get("patches", []) if "path" in p]
        for ref in refs:
            assert (kustomization.parent / ref).exists(), f"{kustomization}: {ref} missing"


def test_every_workload_has_probes_limits_and_runs_hardened() -> None:
    for path in _manifests():
        for doc in _documents(path):
            if doc["kind"] not in {"Deployment", "StatefulSet"}:
                continue
            pod = doc["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, path
            for c in pod["containers"]:
                assert "readinessProbe" in c and "livenessProbe" in c, (path, c["name"])
                assert {"requests", "limits"} <= set(c["resources"]), (path, c["name"])
                assert c["securityContext"]["allowPrivilegeEscalation"] is False, (path, c["name"])


def test_dockerfiles_pass_hadolint() -> None:
    hadolint = _tool("hadolint")
    files = sorted((ROOT / "docker").glob("*.Dockerfile"))
    assert {f.name for f in files} == {"gateway.Dockerfile", "worker.Dockerfile", "pipeline.Dockerfile"}
    out = subprocess.run([str(hadolint), *map(str, files)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    for f in files:
        text = f.read_text()
        assert "USER " in text and "HEALTHCHECK" in text and text.count("FROM ") >= 2, f.name


def test_checkov_finds_no_failed_check() -> None:
    checkov = _tool("checkov")
    out = subprocess.run(
        [str(checkov), "-d", "k8s", "-d", "docker", "--config-file", ".checkov.yaml"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    print(out.stdout[-2000:])
    assert "Failed checks: 0" in out.stdout and "Failed checks: 1" not in out.stdout, out.stdout[-4000:]
    assert out.returncode == 0, out.stdout[-4000:]


def test_compose_file_has_the_laptop_stack() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {
        "redis", "mlflow", "gateway", "model-worker", "challenger-worker", "decision-worker", "notifier", "airflow"
    }  # fmt: skip
    assert services["model-worker"]["deploy"]["replicas"] == 2
    assert services["challenger-worker"]["profiles"] == ["challenger"]
    assert "../dags:/opt/airflow/dags:ro" in services["airflow"]["volumes"]
    assert "CHANGE_ME" in (ROOT / "docker" / "compose.env.example").read_text()

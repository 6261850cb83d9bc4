"""The container images really build and run (Podman; no registry reachable).

The Dockerfiles start from `python:3.11-slim-bookworm`. With no registry, that
image is assembled here: Debian bookworm (Python 3.11) by debootstrap,
imported into Podman under that name, with the machine's CA bundle so that
pip inside the build trusts the same proxy the host does. Then the three
images are built, and the gateway and worker images run against a server
on the host: `/health`, one `/fair_price`, the images' HEALTHCHECKs, and a
non-root user in every image.

Podman 4.3 here needs runc and ulimits below the machine's hard limits: a
private containers.conf says so. Skips with the reason where Podman or
debootstrap is missing; `.ci/run` installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from workers.local.embedded import EmbeddedRedis, free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASE = "docker.io/library/python:3.11-slim-bookworm"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
IMAGES = {"gateway": "gateway.Dockerfile", "worker": "worker.Dockerfile", "pipeline": "pipeline.Dockerfile"}
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
[engine]
runtime = "runc"
"""


def _run(args: list[str], env: dict[str, str], timeout: float = 120, check: bool = True) -> str:
    out = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(
            f"{' '.join(args[:4])}... exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        )
    return out.stdout


@pytest.fixture(scope="module")
def podman(tmp_path_factory) -> dict[str, str]:
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install podman runc debootstrap; .ci/run does)")
    if os.geteuid() != 0:
        pytest.skip("building the base image with debootstrap needs root")
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    env = {**os.environ, "CONTAINERS_CONF": str(conf)}
    if _run(["podman", "images", "-q", BASE], env).strip() == "":
        _build_base(tmp_path_factory.mktemp("rootfs"), env)
    return env


def _build_base(rootfs: Path, env: dict[str, str]) -> None:
    """python:3.11-slim-bookworm stand-in: Debian bookworm's Python 3.11, from debootstrap."""
    _run(
        [
            "debootstrap", "--variant=minbase", "--include=python3,python3-venv,python-is-python3,ca-certificates",
            "bookworm", str(rootfs), "http://deb.debian.org/debian",
        ],
        env,
        timeout=900,
    )  # fmt: skip
    if HOST_CA.exists():
        shutil.copy(HOST_CA, rootfs / "etc/ssl/certs/ca-certificates.crt")
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        shutil.rmtree(rootfs / cache, ignore_errors=True)
    archive = rootfs.parent / "rootfs.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(rootfs, arcname=".")
    _run(
        [
            "podman", "import",
            "--change", "ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt",
            "--change", "ENV LANG=C.UTF-8",
            "--change", 'CMD ["python3"]',
            str(archive), BASE,
        ],
        env,
        timeout=300,
    )  # fmt: skip
    archive.unlink()


@pytest.fixture(scope="module")
def images(podman: dict[str, str]) -> dict[str, str]:
    built = {}
    for name, dockerfile in IMAGES.items():
        tag = f"localhost/pokewatch-{name}:test"
        started = time.monotonic()
        _run(
            [
                "podman", "build", "--format", "docker", "--pull=never", "--network", "host",
                "-f", f"docker/{dockerfile}", "-t", tag, str(ROOT),
            ],
            podman,
            timeout=1800,
        )  # fmt: skip
        print(f"\nbuilt {tag} in {time.monotonic() - started:.0f} s")
        built[name] = tag
    return built


def test_every_image_runs_as_a_non_root_user(podman, images) -> None:
    for name, tag in images.items():
        uid = _run(["podman", "run", "--rm", "--entrypoint", "id", tag, "-u"], podman).strip()
        assert uid in {"10001", "50000"}, (name, uid)
    assert "pokewatch" in _run(
        ["podman", "run", "--rm", "--entrypoint", "pokewatch", images["worker"], "--help"], podman
    )
    # The gateway image holds the shared contracts and the gateway, nothing of workers/ (pipeline, serving).
    probe = "import importlib.util as u; print([m for m in ('contracts', 'gateway', 'workers') if u.find_spec(m)])"
    shipped = _run(["podman", "run", "--rm", "--entrypoint", "python", images["gateway"], "-c", probe], podman)
    assert shipped.strip() == "['contracts', 'gateway']", shipped
    version = _run(["podman", "run", "--rm", images["pipeline"], "airflow", "version"], podman, timeout=300)
    assert version.strip().startswith("3."), version


def test_gateway_and_worker_images_serve_a_price(podman, images, champion_data_dir, tmp_path) -> None:
    # A copy the images' non-root users may read, mounted where the registry
    # recorded its artifacts (absolute paths under champion_data_dir).
    data = tmp_path / "data"
    shutil.copytree(champion_data_dir, data)
    _run(["chmod", "-R", "a+rwX", str(data)], podman)
    inside = champion_data_dir.resolve()
    server = EmbeddedRedis(tmp_path / "redis").start()
    gateway_port, model_probe, decision_probe = free_port(), free_port(), free_port()
    common = ["--network", "host", "-e", f"REDIS_URL={server.url}"]
    names = {"model": f"pw-model-{gateway_port}", "decision": f"pw-decision-{gateway_port}"}
    names["gateway"] = f"pw-gateway-{gateway_port}"
    try:
        _run(
            [
                "podman", "run", "-d", "--name", names["model"], *common, "-v", f"{data}:{inside}",
                "-e", f"MLFLOW_TRACKING_URI=sqlite:///{inside}/mlflow.db", "-e", f"POKEWATCH_HEALTH_PORT={model_probe}",
                images["worker"], "model", "--wait", "60",
            ],
            podman,
        )  # fmt: skip
        _run(
            [
                "podman", "run", "-d", "--name", names["decision"], *common,
                "-e", f"POKEWATCH_HEALTH_PORT={decision_probe}", images["worker"], "decision",
            ],
            podman,
        )  # fmt: skip
        _run(
            [
                "podman", "run", "-d", "--name", names["gateway"], *common,
                "-e", f"POKEWATCH_GATEWAY_PORT={gateway_port}", images["gateway"],
            ],
            podman,
        )  # fmt: skip
        base = f"http://127.0.0.1:{gateway_port}"
        deadline = time.monotonic() + 120
        health: dict = {}
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base}/health", timeout=3).json()
                if health.get("status") == "ok":
                    break
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(1)
        logs = {
            n: subprocess.run(["podman", "logs", c], env=podman, capture_output=True, text=True).stderr[-1500:]
            for n, c in names.items()
        }
        assert health.get("status") == "ok", (health, logs)
        assert health["model_versions"] == ["1"]
        card = httpx.get(f"{base}/cards", params={"page_size": 1}).json()["items"][0]["card_id"]
        resp = httpx.post(f"{base}/fair_price", json={"card_id": card}, timeout=10)
        assert resp.status_code == 200, resp.text
        assert resp.json()["signal"] in {"BUY", "SELL", "HOLD"} and resp.json()["model_version"] == "1"
        print(f"through the containers: {resp.json()}")
        for role in ("gateway", "model", "decision"):
            out = subprocess.run(["podman", "healthcheck", "run", names[role]], env=podman, capture_output=True)
            assert out.returncode == 0, (role, out.stdout, out.stderr)
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "10", *names.values()], env=podman, capture_output=True)
        server.stop()

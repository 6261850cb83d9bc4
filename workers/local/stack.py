"""`pokewatch up`: the whole local stack as child processes of one command.

Broker: REDIS_URL if set, else an embedded server (workers.local.embedded)
with its data in `<data dir>/redis`. Then the gateway (uvicorn), N model
replicas, one decision worker and (`notifiers=1`) the notifier, each a separate process logging to
`<data dir>/logs/<name>.log`. `stop()` sends SIGTERM to every child (workers
drain in-flight work), waits, and stops the embedded server last.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from workers.local.embedded import EmbeddedRedis, free_port, port_is_free


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    metrics_port: int | None = None  # where its /metrics is served, if it serves any


@dataclass
class LocalStack:
    data_dir: Path
    port: int = 8000
    host: str = "127.0.0.1"
    model_replicas: int = 2
    # Challenger replicas (workers.serving.challenger): 0 unless a challenger is to be shadow-scored.
    challengers: int = 0
    decision_workers: int = 1
    notifiers: int = 0
    # Workers serve /metrics on ports of their own and an exporter runs (pokewatch up does).
    metrics: bool = False
    redis_url: str | None = None
    redis_port: int = 6379
    extra_env: dict[str, str] = field(default_factory=dict)
    # A broker URL per role ("gateway", "model", "decision", "notifier"), e.g. with its own ACL user.
    role_urls: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    redis: EmbeddedRedis | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def broker_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        assert self.redis is not None, "stack not started"
        return self.redis.url

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "REDIS_URL": self.broker_url,
            "POKEWATCH_DATA_DIR": str(self.data_dir.resolve()),
            "PYTHONUNBUFFERED": "1",
            **self.extra_env,
        }

    def start_broker(self) -> str:
        if self.redis_url is None and self.redis is None:
            port = self.redis_port if self.redis_port and port_is_free(self.redis_port) else free_port()
            self.redis = EmbeddedRedis(self.data_dir / "redis", port=port).start()
        return self.broker_url

    def spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, metrics_port: int | None = None
    ) -> Child:
        logs = self.data_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        env = {**(env or {})}
        if metrics_port is None and self.metrics and args[3:4] == ["worker"]:
            metrics_port = free_port()
            env |= {"POKEWATCH_HEALTH_PORT": str(metrics_port), "POKEWATCH_HEALTH_HOST": self.host}
        with log.open("ab") as fh:
            proc = subprocess.Popen(args, env={**self.env(), **env}, stdout=fh, stderr=subprocess.STDOUT)
        child = Child(name, proc, log, metrics_port)
        self.children.append(child)
        return child

    def _role_env(self, role: str) -> dict[str, str]:
        return {"REDIS_URL": self.role_urls[role]} if role in self.role_urls else {}

    def spawn_model(self, name: str) -> Child:
        args = [sys.executable, "-m", "workers.cli", "worker", "model", "--replica", name]
        return self.spawn(name, args, self._role_env("model"))

    def spawn_challenger(self, name: str) -> Child:
        args = [sys.executable, "-m", "workers.cli", "worker", "challenger", "--replica", name]
        return self.spawn(name, args, self._role_env("challenger"))

    def spawn_decision(self, name: str) -> Child:
        args = [sys.executable, "-m", "workers.cli", "worker", "decision", "--replica", name]
        return self.spawn(name, args, self._role_env("decision"))

    def spawn_notifier(self, name: str, env: dict[str, str] | None = None) -> Child:
        args = [sys.executable, "-m", "workers.cli", "worker", "notifier", "--replica", name]
        return self.spawn(name, args, {**self._role_env("notifier"), **(env or {})})

    def spawn_exporter(self, name: str = "exporter") -> Child:
        port = free_port()
        args = [sys.executable, "-m", "workers.cli", "exporter", "--port", str(port), "--host", self.host]
        return self.spawn(name, args, self._role_env("monitor"), metrics_port=port)

    def scrape_targets(self) -> dict[str, list[str]]:
        """Prometheus jobs and their targets: the gateway, each worker, the exporter."""
        jobs: dict[str, list[str]] = {"gateway": [f"{self.host}:{self.port}"]}
        for child in self.children:
            if child.metrics_port and child.process.poll() is None:
                job = "exporter" if child.name.startswith("exporter") else child.name.rstrip("0123456789").rstrip("-")
                jobs.setdefault(job, []).append(f"{self.host}:{child.metrics_port}")
        return jobs

    def prometheus_config(self, interval: str = "15s", rule_files: list[str] | None = None) -> str:
        """A Prometheus configuration that scrapes this stack (`pokewatch up` writes it to the data dir)."""
        lines = ["global:", f"  scrape_interval: {interval}", f"  evaluation_interval: {interval}"]
        if rule_files:
            lines += ["rule_files:", *[f"  - {f}" for f in rule_files]]
        lines.append("scrape_configs:")
        for job, targets in self.scrape_targets().items():
            lines += [f"  - job_name: {job}", "    static_configs:", f"      - targets: {targets}"]
        return "\n".join(lines).replace("'", '"') + "\n"

    def spawn_gateway(self, name: str = "gateway", port: int | None = None, env: dict[str, str] | None = None) -> Child:
        args = [sys.executable, "-m", "gateway", "--host", self.host, "--port", str(port or self.port)]
        return self.spawn(name, args, {**self._role_env("gateway"), **(env or {})})

    def start(self, timeout: float = 120.0) -> LocalStack:
        self.start_broker()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for i in range(1, self.model_replicas + 1):
            self.spawn_model(f"model-{i}")
        for i in range(1, self.decision_workers + 1):
            self.spawn_decision(f"decision-{i}")
        for i in range(1, self.challengers + 1):
            self.spawn_challenger(f"challenger-{i}")
        for i in range(1, self.notifiers + 1):
            self.spawn_notifier(f"notifier-{i}")
        if self.metrics:
            self.spawn_exporter()
        self.spawn_gateway()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 120.0, models: int | None = None) -> dict[str, object]:
        """Until /health says every expected worker is live."""
        want = self.model_replicas if models is None else models
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            for child in self.children:
                if child.process.poll() is not None:
                    raise RuntimeError(f"{child.name} exited with {child.process.returncode}; see {child.log}")
            try:
                resp = httpx.get(f"{self.url}/health", timeout=2)
                body = resp.json()
                live = [r for r in body.get("replicas", []) if r["live"]]
                if (
                    resp.status_code == 200
                    and sum(r["role"] == "model" for r in live) >= want
                    and sum(r["role"] == "decision" for r in live) >= self.decision_workers
                    and sum(r["role"] == "notifier" for r in live) >= self.notifiers
                    and sum(r["role"] == "challenger" for r in live) >= self.challengers
                ):
                    return dict(body)
                last = body
            except (httpx.HTTPError, ValueError) as exc:
                last = exc
            time.sleep(0.3)
        raise TimeoutError(f"stack not ready within {timeout} s; last /health: {last}")

    def stop(self, timeout: float = 15.0) -> dict[str, int | None]:
        """SIGTERM every child, wait for them, then stop the embedded broker. Returns exit codes."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[str, int | None] = {}
        for child in self.children:
            try:
                codes[child.name] = child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                codes[child.name] = child.process.wait()
        self.children.clear()
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        return codes

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

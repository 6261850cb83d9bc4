"""A webhook receiver on loopback for the notifier tests: records every POST, answers as told."""

from __future__ import annotations

import http.server
import threading
import time
from dataclasses import dataclass, field

Answer = tuple[int, dict[str, str]]


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """An HTTP server in a thread. `answers[path]` is (status, extra headers), or a list of them answered
    in turn (the last one repeats); 204 by default. `delay_s` holds each answer."""

    port: int
    answers: dict[str, Answer | list[Answer]] = field(default_factory=dict)
    delay_s: float = 0.0
    received: list[Received] = field(default_factory=list)
    _server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Receiver:
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                owner.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.time())
                )
                time.sleep(owner.delay_s)
                status, extra = owner.answer(self.path)
                self.send_response(status)
                for k, v in extra.items():
                    self.send_header(k, v)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def answer(self, path: str) -> Answer:
        planned = self.answers.get(path, (204, {}))
        if isinstance(planned, tuple):
            return planned
        return planned[min(len(self.on(path)), len(planned)) - 1]

    def on(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

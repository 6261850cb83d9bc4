"""`python -m gateway [--host H] [--port P] [--workers N]`: the REST gateway under uvicorn.

The gateway image's entry point: it needs nothing of `workers/`.
"""

from __future__ import annotations

import argparse
import os

from contracts import logs


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="bind address")
    parser.add_argument("--port", type=int, default=int(os.environ.get("POKEWATCH_GATEWAY_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args(argv)
    logs.configure("gateway")
    uvicorn.run(
        "gateway.main:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        # Idle keep-alive connections stay open longer than clients and load
        # balancers keep theirs (60 s is the common default): a server that
        # closes first races a request being sent on the same connection, and
        # the client sees a reset instead of an answer.
        timeout_keep_alive=75,
    )


if __name__ == "__main__":
    main()

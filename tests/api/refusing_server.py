"""A server that refuses every row: ``python -m tests.api.refusing_server RETRY_AFTER ...``.

A tiny Starlette app under uvicorn, in a process of its own so that its pace is not the test
process's. ``GET /health`` answers 200; every ``POST`` 503 with ``Retry-After: RETRY_AFTER``;
``GET /arrivals`` each row's arrival and answer (monotonic times) and ``X-Request-Id``, in the
order they came (JSON). The first ``--hold`` rows are answered together, once all have come (a
real overload's burst: a whole round refused at once). The run is stopped with SIGINT to
``--stop-pid`` (as a Ctrl-C) ``--stop-after-s`` seconds after the first row, or at the
``--stop-at``-th row. The port is the first line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["main", "refusing_app"]

BUSY = {"message": "Busy.", "type": "ServiceUnavailableError", "param": None, "code": 503}


def refusing_app(options: argparse.Namespace) -> Starlette:
    """The app: every row refused, its arrival noted; the run stopped when its time comes."""
    arrivals: list[dict[str, object]] = []
    round_full = asyncio.Event()
    stopped: list[bool] = []

    def stop_run() -> None:
        if not stopped:  # one SIGINT: a second would end the run's process the default way
            stopped.append(True)
            os.kill(options.stop_pid, signal.SIGINT)

    async def row(request: Request) -> JSONResponse:
        await request.body()
        arrival: dict[str, object] = {"at": time.monotonic(), "id": request.headers["X-Request-Id"]}
        arrivals.append(arrival)
        count = len(arrivals)
        if count == 1 and options.stop_after_s is not None:
            asyncio.get_running_loop().call_later(options.stop_after_s, stop_run)
        if count == options.stop_at:
            stop_run()
        if count >= options.hold:
            round_full.set()
        else:
            await round_full.wait()
        arrival["answered"] = time.monotonic()
        headers = {"Retry-After": options.retry_after}
        return JSONResponse({"error": BUSY}, status_code=503, headers=headers)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def seen(_request: Request) -> JSONResponse:
        return JSONResponse(arrivals)

    routes = [Route("/health", health), Route("/arrivals", seen)]
    return Starlette(routes=[*routes, Route("/v1/{task}", row, methods=["POST"])])


def main() -> None:
    """Serve until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("retry_after")
    parser.add_argument("--stop-pid", type=int, required=True)
    parser.add_argument("--stop-after-s", type=float)
    parser.add_argument("--stop-at", type=int)
    parser.add_argument("--hold", type=int, default=1)
    options = parser.parse_args()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # a free port, held from here on: no race for it
    listener.listen(256)  # connections wait in the backlog until uvicorn accepts them
    sys.stdout.write(f"{listener.getsockname()[1]}\n")
    sys.stdout.flush()
    config = uvicorn.Config(refusing_app(options), log_level="warning", backlog=256)
    uvicorn.Server(config).run(sockets=[listener])


if __name__ == "__main__":
    main()

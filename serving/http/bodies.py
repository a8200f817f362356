"""Reading a request's body in an ASGI middleware: whole up to a limit, dropped for a bounded
time, or handed on to the app as if it had not been read.

The gate reads a body before a route does (its size, the completion limits) and must then give it
to the app unchanged; a refusal reads and drops the rest so that its client sees the answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.datastructures import Headers
from starlette.types import Message, Receive

__all__ = ["BodyTooLarge", "discard", "has_body", "json_or_none", "read_body", "replay_body"]


class BodyTooLarge(Exception):
    """The body grew past the limit while it was read (``ended``: its last part came too)."""

    def __init__(self, ended: bool) -> None:
        super().__init__()
        self.ended = ended


def has_body(headers: Headers) -> bool:
    """Whether the request declares a body (a length over 0, or chunks)."""
    declared = headers.get("content-length", "0")
    return "transfer-encoding" in headers or not declared.isdigit() or int(declared) > 0


async def discard(receive: Receive, seconds: float) -> None:
    """Read and drop the rest of a body until it ends, the client leaves, or ``seconds`` pass."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    return


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None if the client left; ``BodyTooLarge`` past ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(ended=not message.get("more_body", False))
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that yields the body read once, then the client's own messages."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def json_or_none(body: bytes) -> Any:
    """The body as JSON, or None where it is none."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None  # the route itself answers invalid JSON

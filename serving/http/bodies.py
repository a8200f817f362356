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
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "BodyTooLarge",
    "discard",
    "has_body",
    "json_or_none",
    "read_body",
    "refuse",
    "replay_body",
]


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


async def refuse(
    response: Response,
    scope: Scope,
    receive: Receive,
    send: Send,
    linger_s: float,
    *,
    body_ended: bool = False,
) -> None:
    """Answer with ``response`` and hold the exchange open while the rest of the request's
    body is read and thrown away, for ``linger_s`` at most (nginx's lingering close): a
    client that sends its whole body before it reads then gets the answer, not a reset
    connection. The server reads the body it refuses; it never keeps it."""
    if body_ended or scope["type"] != "http" or not has_body(Headers(scope=scope)):
        await response(scope, receive, send)
        return
    # What is left of the body after the linger is not read: the connection cannot serve
    # another request after it.
    response.headers["Connection"] = "close"

    async def held(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            message = {**message, "more_body": True}
        await send(message)

    await response(scope, receive, held)
    await discard(receive, linger_s)
    await send({"type": "http.response.body", "body": b"", "more_body": False})

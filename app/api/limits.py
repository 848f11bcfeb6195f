"""Request bodies over MAX_BODY_BYTES answer 413 before they are parsed.

A declared Content-Length over the limit is refused before a byte of the body is read; a body
without one (chunked) is counted as it arrives and refused as soon as it passes the limit.
"""

from __future__ import annotations

import json
import logging

from fastapi import HTTPException

logger = logging.getLogger(__name__)


class BodyTooLarge(HTTPException):
    """Raised from the body stream; an HTTPException so FastAPI's body parsing passes it on (any
    other error there becomes a 400) and answers it as a 413 with a JSON message."""

    def __init__(self, limit: int):
        super().__init__(413, _message(limit))


def _message(limit: int) -> str:
    return f"request body over {limit} bytes"


class BodySizeLimit:
    """Pure ASGI middleware (it must see the body stream, which BaseHTTPMiddleware hides)."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = _content_length(scope)
        if declared == -1:
            return await _answer(send, 400, "Content-Length is not a number")
        if declared is not None and declared > self.max_bytes:
            logger.warning("request body refused", extra={"path": scope.get("path"), "declared_bytes": declared,
                                                          "limit_bytes": self.max_bytes})
            return await _answer(send, 413, _message(self.max_bytes))

        received = 0
        started = False

        async def counted_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    logger.warning("request body refused", extra={"path": scope.get("path"),
                                                                  "limit_bytes": self.max_bytes})
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracked_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLarge:
            # Read outside FastAPI's body parsing (nothing turned it into a response yet).
            if started:
                raise
            await _answer(send, 413, _message(self.max_bytes))


def _content_length(scope) -> int | None:
    """The declared length; None when absent, -1 when not a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return -1
    return None


async def _answer(send, code: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": code,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})

"""Request bodies over ``SOMA_MAX_REQUEST_BYTES``: 413 in the service's one error shape.

A body whose Content-Length is over the limit is refused before any of it is read; a body sent
without a length (chunked) is cut off as soon as it passes the limit: reading it further raises
an HTTP 413 exception, which the error handlers answer (the framework passes HTTP exceptions
through its body parsing, where another error would become a 400). The framework's own limit
would answer the first case in plain text.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .gate import _refuse


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it sent one that is a number."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimit:
    """At most ``max_bytes`` of request body, declared or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self, size: str) -> str:
        return (
            f"the request body ({size}) is over the limit of {self.max_bytes} bytes "
            "(SOMA_MAX_REQUEST_BYTES)"
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _refuse(send, 413, self._detail(f"{declared} bytes"), [(b"connection", b"close")])
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    detail = self._detail(f"more than {self.max_bytes} bytes sent")
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, bounded_receive, send)

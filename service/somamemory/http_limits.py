"""Connection-level limits for uvicorn's HTTP protocol, so no client pins the server for free.

uvicorn bounds idle keep-alive (``timeout_keep_alive``) and concurrency (``limit_concurrency``),
but with httptools it reads a request head of any size for as long as the client takes, and a
body for as long as the client dribbles it. This protocol adds a head-size limit (431), a time
limit for the head (from the connection or the request's first byte) and one for the body; a
client over a time limit is disconnected.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .problems import problem_bytes

# After a 431 the rest of the client's head is read and dropped for at most this long before the
# connection closes: closing with unread input would send a reset, which can destroy the answer
# before the client reads it (a "lingering close", as nginx does).
LINGER_SECONDS = 2.0
_TOO_LARGE = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n%s"
)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The numbers, from the settings."""

    max_head_bytes: int
    head_timeout_seconds: float
    body_timeout_seconds: float


def bounded_protocol(limits: HttpLimits) -> type[HttpToolsProtocol]:
    """An httptools protocol class that enforces ``limits`` (uvicorn's ``http=`` takes it)."""

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _head_bytes = 0
        _in_head = True
        _deadline: asyncio.TimerHandle | None = None
        _lingering = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(limits.head_timeout_seconds)  # a connection that never sends a request

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._lingering:
                return  # refused: read and dropped until the client closes or the linger ends
            # counted before parsing: a whole oversized head can arrive in one read, and once
            # parsed it would be served
            if self._in_head and not self.transport.is_closing():
                end = data.find(b"\r\n\r\n")
                self._head_bytes += len(data) if end < 0 else end + 4
                if self._head_bytes > limits.max_head_bytes:
                    self._refuse_head()
                    return
            super().data_received(data)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._arm(limits.head_timeout_seconds)

        def on_headers_complete(self) -> None:
            self._in_head, self._head_bytes = False, 0
            self._arm(limits.body_timeout_seconds)
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            self._disarm()
            self._in_head = True  # the next request's head may follow on this connection
            super().on_message_complete()

        def _arm(self, seconds: float) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _too_slow(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.logger.info("closing a connection that sent too slowly")
                self.transport.close()

        def _refuse_head(self) -> None:
            detail = f"request line and headers exceed {limits.max_head_bytes} bytes"
            body = problem_bytes(431, detail)
            self.transport.write(_TOO_LARGE % (len(body), body))
            self._disarm()
            if not self.transport.can_write_eof():
                self.transport.close()
                return
            self._lingering = True
            self.transport.write_eof()  # the answer, then FIN; the client's EOF closes it
            self._deadline = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    return BoundedHttpToolsProtocol


def uvicorn_options(limits: HttpLimits, *, keepalive_seconds: float, concurrency: int) -> Any:
    """The keyword arguments of ``uvicorn.Config`` that carry these limits."""
    return {
        "http": bounded_protocol(limits),
        "timeout_keep_alive": keepalive_seconds,
        "limit_concurrency": concurrency,
    }

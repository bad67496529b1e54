"""Typed errors: one exception class per kind of failure, carrying the server's ``detail``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from ._models import BatchItemResult


class SomaClientError(Exception):
    """Base class of every error this client raises."""


class ConnectionFailed(SomaClientError):
    """The server could not be reached (refused, reset, timed out), retries included."""

    @classmethod
    def after(cls, request: httpx.Request, error: Exception, attempts: int) -> ConnectionFailed:
        """The failure of ``request`` after ``attempts`` tries."""
        return cls(
            f"{request.method} {request.url} failed after {attempts} attempt(s): "
            f"{type(error).__name__}: {error}"
        )


class UnexpectedResponse(SomaClientError):
    """The server answered, but not with the documented shape (wrong URL? a proxy page?)."""


class APIError(SomaClientError):
    """The server answered with an error status; ``detail`` is its reason, ``body`` its JSON."""

    def __init__(self, status: int, detail: str, body: Any = None) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status
        self.detail = detail
        self.body = body


class BadRequest(APIError):
    """400 (a bad coordinate, namespace, vector, filter or payload value) or 422 (schema)."""


class BatchRejected(BadRequest):
    """An atomic batch with invalid items: nothing was written; ``results`` say which and why."""

    def __init__(self, status: int, detail: str, body: Any, results: list[BatchItemResult]):
        super().__init__(status, detail, body)
        self.results = results


class Unauthorized(APIError):
    """401: missing or wrong bearer token (``SOMA_API_TOKEN``)."""


class Forbidden(APIError):
    """403: the token may not do this, or not in this namespace."""


class NotFound(APIError):
    """404: no such memory in this namespace (or no such route on this server)."""


class PayloadTooLarge(APIError):
    """413: a payload over the server's limit, or too many batch items."""


class RateLimited(APIError):
    """429: too many requests; ``retry_after`` is the server's wait in seconds, if it said."""

    def __init__(self, status: int, detail: str, body: Any, retry_after: float | None) -> None:
        super().__init__(status, detail, body)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx: the server failed."""


class Unavailable(ServerError):
    """503: a backend the request needs is down; writes are upserts, so trying later is safe."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: PayloadTooLarge,
    422: BadRequest,
    503: Unavailable,
}


def detail_text(body: Any, fallback: str) -> str:
    """The server's reason as one line: ``detail`` as is, or a 422's list of schema errors."""
    detail = body.get("detail") if isinstance(body, Mapping) else None
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list) and detail:
        problems = []
        for error in detail:
            if isinstance(error, Mapping):
                where = ".".join(str(part) for part in error.get("loc", ()))
                problems.append(f"{where}: {error.get('msg', error)}" if where else str(error))
            else:
                problems.append(str(error))
        return "; ".join(problems)
    return fallback


def error_for(status: int, body: Any, reason: str, retry_after: float | None) -> APIError:
    """The typed error for an error status; ``reason`` stands in when the body has no detail."""
    detail = detail_text(body, reason or f"HTTP {status}")
    if status == 429:
        return RateLimited(status, detail, body, retry_after)
    kind = _BY_STATUS.get(status) or (ServerError if status >= 500 else APIError)
    return kind(status, detail, body)

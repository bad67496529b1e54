"""Domain errors to HTTP statuses, in one place."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from ..errors import (
    BackendUnavailable,
    EmbeddingUnavailable,
    InvalidCoordinate,
    InvalidInput,
    LockTimeout,
    MemoryNotFound,
    NotPermitted,
    PayloadTooLarge,
    ReembeddingInProgress,
    SomaError,
    TokenNotFound,
)
from ..problems import problem_bytes

log = logging.getLogger(__name__)

# domain error -> (status, code); the first class that matches wins, so subclasses come first
STATUS: tuple[tuple[type[SomaError], int, str], ...] = (
    (InvalidCoordinate, 400, "invalid_coordinate"),
    (InvalidInput, 400, "invalid_input"),
    (PayloadTooLarge, 413, "payload_too_large"),
    (MemoryNotFound, 404, "memory_not_found"),
    (TokenNotFound, 404, "token_not_found"),
    (NotPermitted, 403, "forbidden"),
    (LockTimeout, 503, "lock_timeout"),
    (EmbeddingUnavailable, 503, "embeddings_unavailable"),
    (ReembeddingInProgress, 503, "reembedding"),
    (BackendUnavailable, 503, "backend_unavailable"),
)


class Unauthorized(SomaError):
    """Missing or wrong bearer token (401)."""


def status_of(exc: SomaError) -> tuple[int, str]:
    """The HTTP status and error code of a domain error."""
    return next(
        ((status, code) for kind, status, code in STATUS if isinstance(exc, kind)),
        (500, "internal_error"),
    )


def problem_response(
    status: int,
    detail: str,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """An error answer in the service's one shape (see ``problems.py``)."""
    body = problem_bytes(status, detail, code=code, **extra)
    return Response(body, status_code=status, media_type="application/json", headers=headers)


# Every 503 says when to try again: a lock held too long or a busy backend clears in a moment;
# a model change's rebuild takes longer.
DEFAULT_RETRY_AFTER = 2
RETRY_AFTER_SECONDS = {"lock_timeout": 1, "reembedding": 10}


async def _soma_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SomaError)
    if isinstance(exc, Unauthorized):
        return problem_response(401, str(exc), headers={"WWW-Authenticate": "Bearer"})
    status, code = status_of(exc)
    if status == 503:
        log.warning("backend unavailable: %s", exc)
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS.get(code or "", DEFAULT_RETRY_AFTER))}
        return problem_response(status, str(exc), code=code, headers=retry)
    if status == 500:
        log.error("unmapped service error on %s %s: %r", request.method, request.url.path, exc)
        return problem_response(500, "internal error; the service log has the details")
    return problem_response(status, str(exc), code=code)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (unknown route 404, 405, body over the limit 413)."""
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route {request.url.path}; /docs lists the API"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}; /docs lists the API"
    return problem_response(exc.status_code, detail, headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal error; the service log has the details")


def _json_safe(value: Any) -> Any:
    """A value any JSON encoder takes: non-finite floats and odd objects become text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def field_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's errors as ``{loc, msg, type}``: what is wrong where, never the input echoed
    back (it may be megabytes, or not encodable)."""
    return [
        {
            "loc": _json_safe(list(error.get("loc", ()))),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in errors
    ]


def errors_summary(errors: list[dict[str, Any]], limit: int = 3) -> str:
    """``body.vector: Input should be a valid list; ...``: the first field errors in one line."""
    parts = [
        ".".join(str(part) for part in error["loc"]) + f": {error['msg']}"
        for error in errors[:limit]
    ]
    more = f" (and {len(errors) - limit} more)" if len(errors) > limit else ""
    return "; ".join(parts) + more


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """422: the field errors, in the one error shape."""
    assert isinstance(exc, RequestValidationError)
    errors = field_errors(exc.errors())
    return problem_response(422, f"invalid request: {errors_summary(errors)}", errors=errors)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(SomaError, _soma_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI documentation of the error statuses a route can answer."""
    from .schemas import ErrorResponse

    text = {
        400: "Bad coordinate, namespace, vector or payload.",
        401: "Missing or wrong bearer token.",
        403: "The token may not do this: another namespace, or beyond its role.",
        404: "No such memory (or token) here.",
        409: "Not possible in this service's configuration; the detail says why.",
        413: "Payload or request too large.",
        422: "The request does not match the schema; ``errors`` says where.",
        429: "Over the token's rate limit; Retry-After says when to come back.",
        503: "A backend the request needs is unavailable.",
    }
    if 401 in codes:  # whatever needs a token is scoped and rate-limited per token
        codes = (*codes, 403, 429)
    codes = (*codes, 422)
    documented = sorted(set(codes))
    return {code: {"model": ErrorResponse, "description": text[code]} for code in documented}

"""Domain errors to HTTP statuses, in one place."""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ..errors import (
    BackendUnavailable,
    InvalidCoordinate,
    InvalidInput,
    MemoryNotFound,
    PayloadTooLarge,
    SomaError,
)

log = logging.getLogger(__name__)

STATUS = {
    InvalidCoordinate: 400,
    InvalidInput: 400,
    PayloadTooLarge: 413,
    MemoryNotFound: 404,
    BackendUnavailable: 503,
}


class Unauthorized(SomaError):
    """Missing or wrong bearer token (401)."""


async def _soma_error(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, Unauthorized):
        return JSONResponse(
            {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
        )
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 500)
    if status == 503:
        log.warning("backend unavailable: %s", exc)
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return JSONResponse({"detail": "internal error; the service log has the details"}, 500)


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


async def _invalid_request(request: Request, exc: Exception) -> Response:
    """422 with FastAPI's shape, safe to encode whatever the client sent (NaN, surrogates)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {key: _json_safe(part) for key, part in error.items() if key != "url"}
        for error in exc.errors()
    ]
    # ASCII escapes: a lone surrogate echoed back cannot be encoded as UTF-8
    body = json.dumps({"detail": errors}, ensure_ascii=True, allow_nan=False)
    return Response(body, status_code=422, media_type="application/json")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(SomaError, _soma_error)
    app.add_exception_handler(Exception, _unexpected)


def responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI documentation of the error statuses a route can answer."""
    from .schemas import ErrorResponse

    text = {
        400: "Bad coordinate, namespace, vector or payload.",
        401: "Missing or wrong bearer token.",
        404: "No such memory in this namespace.",
        413: "Payload or request too large.",
        429: "Over the token's rate limit; Retry-After says when to come back.",
        503: "A backend the request needs is unavailable.",
    }
    if 401 in codes:  # whatever needs a token is rate-limited per token
        codes = (*codes, 429)
    return {code: {"model": ErrorResponse, "description": text[code]} for code in sorted(codes)}

"""Domain errors to HTTP statuses, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
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


def install_error_handlers(app: FastAPI) -> None:
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
        503: "A backend the request needs is unavailable.",
    }
    return {code: {"model": ErrorResponse, "description": text[code]} for code in codes}

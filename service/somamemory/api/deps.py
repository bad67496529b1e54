"""Request dependencies: the caller, the namespace it may use, the service."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import InvalidInput, NotPermitted
from ..principals import Principal, Role
from ..service import MemoryService
from .errors import Unauthorized

_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
bearer = HTTPBearer(auto_error=False, description="SOMA_API_TOKEN")


MISSING_TOKEN = "missing bearer token: send 'Authorization: Bearer <token>'"


def bearer_token(authorization: bytes | None) -> bytes | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None."""
    if authorization is None:
        return None
    scheme, _, candidate = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not candidate.strip():
        return None
    return candidate.strip()


async def caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """Who is calling: the auth gate authenticated the token before the body was read (401 for
    a bad one) and left the caller here. ``credentials`` documents the scheme in OpenAPI."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # a route the gate let through as public: it has no caller
        raise Unauthorized(MISSING_TOKEN)
    return principal


Caller = Annotated[Principal, Depends(caller)]


async def namespace(
    request: Request,
    x_soma_namespace: Annotated[
        str | None,
        Header(description="Tenant namespace; letters, digits, '_', '.', '-' (1-64)."),
    ] = None,
) -> str:
    """The caller's namespace: the header, else the configured default."""
    default: str = request.app.state.settings.namespace
    return requested_namespace(x_soma_namespace, default)


def requested_namespace(header: str | None, default: str) -> str:
    """The namespace an ``X-Soma-Namespace`` header value names, else ``default`` (400 if it is
    malformed). The MCP endpoint reads the same header through here."""
    if header is None:
        return default
    if not _NAMESPACE.fullmatch(header):
        raise InvalidInput("X-Soma-Namespace must be 1-64 letters, digits, '_', '.' or '-'")
    return header


Requested = Annotated[str, Depends(namespace)]


def authorize(caller: Principal, namespace: str, role: Role) -> str:
    """``namespace`` if ``caller`` may use it with ``role``; 403 otherwise."""
    if not caller.may(role):
        raise NotPermitted(f"this token's role is {caller.role!r}; this needs {role!r}")
    if not caller.covers(namespace):
        raise NotPermitted(f"this token may not use namespace {namespace!r}")
    return namespace


def _scoped(role: Role) -> Callable[..., Awaitable[str]]:
    async def scoped_namespace(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        x_soma_namespace: Annotated[
            str | None,
            Header(description="Tenant namespace; letters, digits, '_', '.', '-' (1-64)."),
        ] = None,
    ) -> str:
        # ``caller`` and ``namespace`` inlined: FastAPI's per-request cost grows with every
        # dependency it resolves, and these two sit on every memory request's path
        principal = await caller(request, credentials)
        default: str = request.app.state.settings.namespace
        return authorize(principal, requested_namespace(x_soma_namespace, default), role)

    return scoped_namespace


async def memory_service(request: Request) -> MemoryService:
    service: MemoryService = request.app.state.service
    return service


Authorized = Depends(caller)
# the caller's namespace, checked against the token's namespaces and role (403 otherwise)
ReadNamespace = Annotated[str, Depends(_scoped("read"))]
WriteNamespace = Annotated[str, Depends(_scoped("write"))]
Service = Annotated[MemoryService, Depends(memory_service)]

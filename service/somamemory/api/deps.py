"""Request dependencies: the bearer token, the namespace, the service."""

from __future__ import annotations

import hmac
import re
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from ..errors import InvalidInput
from ..service import MemoryService
from .errors import Unauthorized

_NAMESPACE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
bearer = HTTPBearer(auto_error=False, description="SOMA_API_TOKEN")


def token_problem(authorization: bytes | None, expected: bytes) -> str | None:
    """What is wrong with an ``Authorization`` header value, or None if it carries the token.

    The comparison takes constant time whatever the candidate.
    """
    if authorization is None:
        return "missing bearer token: send 'Authorization: Bearer <SOMA_API_TOKEN>'"
    scheme, _, candidate = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer" or not candidate.strip():
        return "missing bearer token: send 'Authorization: Bearer <SOMA_API_TOKEN>'"
    if not hmac.compare_digest(candidate.strip(), expected):
        return "invalid bearer token"
    return None


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Compare the bearer token in constant time; 401 with ``WWW-Authenticate`` otherwise.

    The auth gate already refused bad tokens before the body was read; this keeps the check
    where the routes declare it (and in the OpenAPI description).
    """
    expected: bytes | None = request.app.state.api_token
    if expected is None:
        return  # explicitly unauthenticated, loopback only (checked at startup)
    header = None if credentials is None else f"Bearer {credentials.credentials}".encode()
    problem = token_problem(header, expected)
    if problem is not None:
        raise Unauthorized(problem)


async def namespace(
    request: Request,
    x_soma_namespace: Annotated[
        str | None,
        Header(description="Tenant namespace; letters, digits, '_', '.', '-' (1-64)."),
    ] = None,
) -> str:
    """The caller's namespace: the header, else the configured default."""
    if x_soma_namespace is None:
        default: str = request.app.state.settings.namespace
        return default
    if not _NAMESPACE.fullmatch(x_soma_namespace):
        raise InvalidInput("X-Soma-Namespace must be 1-64 letters, digits, '_', '.' or '-'")
    return x_soma_namespace


async def memory_service(request: Request) -> MemoryService:
    service: MemoryService = request.app.state.service
    return service


Authorized = Depends(require_token)
Namespace = Annotated[str, Depends(namespace)]
Service = Annotated[MemoryService, Depends(memory_service)]

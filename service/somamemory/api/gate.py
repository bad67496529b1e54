"""The auth gate: refuse an unauthenticated request before anything reads its body.

FastAPI resolves dependencies (the bearer check among them) only after it has read and parsed
the body, so an anonymous client could make the service buffer and decode up to the request
limit. This pure ASGI middleware checks the token from the headers alone and answers 401
without touching the body; the route dependency stays, for the OpenAPI description.
"""

from __future__ import annotations

import hashlib
import hmac
import math

from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import BackendUnavailable
from ..principals import ADMIN_EVERYWHERE, Principal
from ..problems import problem_bytes
from ..service import MemoryService
from .deps import MISSING_TOKEN, bearer_token

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})
LOOPBACK_HOSTS = frozenset({b"localhost", b"127.0.0.1", b"[::1]"})


def _host_name(host: bytes) -> bytes:
    """The Host header without its port: ``localhost:10101`` -> ``localhost``."""
    if host.startswith(b"["):
        return host.split(b"]", 1)[0] + b"]"
    return host.rsplit(b":", 1)[0] if host.count(b":") == 1 else host


def _caller(authorization: bytes | None) -> str:
    """Whom a request counts against: its token (by digest, never the secret itself)."""
    return hashlib.sha256(authorization or b"anonymous").hexdigest()[:32]


async def _refuse(send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]]) -> None:
    """Answer with an error (the service's one shape) without reading the request's body."""
    body = problem_bytes(status, detail)
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


class AuthGate:
    """Pass only requests to public paths or with the right bearer token."""

    def __init__(self, app: ASGIApp, *, token: bytes | None, public_metrics: bool) -> None:
        self.app = app
        self.token = token
        self.public = PUBLIC_PATHS | ({"/metrics"} if public_metrics else set())

    async def _authenticate(
        self, authorization: bytes | None, service: MemoryService | None
    ) -> Principal | str:
        """The caller behind an ``Authorization`` header, or what is wrong with it."""
        candidate = bearer_token(authorization)
        if candidate is None:
            return MISSING_TOKEN
        assert self.token is not None
        if hmac.compare_digest(candidate, self.token):  # constant time, whatever the candidate
            return ADMIN_EVERYWHERE
        if service is not None:
            principal = await service.access.authenticate(candidate)
            if principal is not None:
                return principal
        return "invalid, expired or revoked bearer token"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if self.token is None:
            # unauthenticated mode serves loopback only: a page on another site that resolves
            # its own name to 127.0.0.1 (DNS rebinding) must not reach the memories
            host = headers.get(b"host", b"")
            if _host_name(host.lower()) not in LOOPBACK_HOSTS:
                detail = "without a token this service answers only to localhost, 127.0.0.1, [::1]"
                await _refuse(send, 421, detail, [])
                return
        if scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        service: MemoryService | None = getattr(scope["app"].state, "service", None)
        principal = ADMIN_EVERYWHERE  # without a token (loopback only): full rights
        if self.token is not None:
            try:
                found = await self._authenticate(headers.get(b"authorization"), service)
            except BackendUnavailable as exc:
                await _refuse(send, 503, f"cannot check this token now: {exc}", [])
                return
            if isinstance(found, str):
                await _refuse(send, 401, found, [(b"www-authenticate", b"Bearer")])
                return
            principal = found
        scope.setdefault("state", {})["principal"] = principal
        if service is not None:
            wait = await service.admit(_caller(headers.get(b"authorization")))
            if wait is not None:
                seconds = max(1, math.ceil(wait))
                detail = f"rate limit exceeded for this token; retry in {seconds} s"
                await _refuse(send, 429, detail, [(b"retry-after", str(seconds).encode())])
                return
        await self.app(scope, receive, send)

"""The auth gate: refuse an unauthenticated request before anything reads its body.

FastAPI resolves dependencies (the bearer check among them) only after it has read and parsed
the body, so an anonymous client could make the service buffer and decode up to the request
limit. This pure ASGI middleware checks the token from the headers alone and answers 401
without touching the body; the route dependency stays, for the OpenAPI description.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from .deps import token_problem

PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/docs", "/docs/oauth2-redirect", "/openapi.json"})


class AuthGate:
    """Pass only requests to public paths or with the right bearer token."""

    def __init__(self, app: ASGIApp, *, token: bytes | None, public_metrics: bool) -> None:
        self.app = app
        self.token = token
        self.public = PUBLIC_PATHS | ({"/metrics"} if public_metrics else set())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.token is not None and scope["path"] not in self.public:
            header = dict(scope["headers"]).get(b"authorization")
            problem = token_problem(header, self.token)
            if problem is not None:
                body = json.dumps({"detail": problem}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"www-authenticate", b"Bearer"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

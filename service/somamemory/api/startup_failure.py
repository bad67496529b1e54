"""A startup the service refuses is reported as its reason, not as a traceback.

Starlette reports any exception raised while the app starts as its whole traceback, which
uvicorn logs: ~70 lines of framework frames around one sentence. A ``StartupError`` is the
service refusing its configuration or its backends, with a message written for the operator, so
that message is what is reported; any other exception keeps its traceback.
"""

from __future__ import annotations

import sys

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import StartupError


class PlainStartupFailure:
    """ASGI middleware: the lifespan's startup failure message, for a ``StartupError``, is
    ``somamemory: <its message>``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_plainly(message: Message) -> None:
            failure = sys.exc_info()[1]  # sent from the handler of the startup's exception
            if message["type"] == "lifespan.startup.failed" and isinstance(failure, StartupError):
                message = {**message, "message": f"somamemory: {failure}"}
            await send(message)

        await self.app(scope, receive, send_plainly)

"""Both clients behind one awaitable face, so each story runs against the sync and the async one.

A sync call made inside the test's event loop simply blocks it: the server is another process
or thread, so nothing waits on the loop meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from somamemory.client import AsyncSomaClient, Memory, SomaClient


class AwaitedSync:
    """A :class:`SomaClient` whose methods are awaited like the async client's."""

    kind = "sync"

    def __init__(self, client: SomaClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    async def all_versions(self, coord: str, **kwargs: Any) -> list[Memory]:
        return list(self.client.iter_versions(coord, **kwargs))


class Async:
    """An :class:`AsyncSomaClient` with the same ``all_versions`` helper."""

    kind = "async"

    def __init__(self, client: AsyncSomaClient) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    async def all_versions(self, coord: str, **kwargs: Any) -> list[Memory]:
        return [memory async for memory in self.client.iter_versions(coord, **kwargs)]


Client = AwaitedSync | Async

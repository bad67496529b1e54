"""The asyncio client: the same routes and errors as :class:`SomaClient`, awaited."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal, TypeVar

import httpx

from . import _calls as calls
from ._calls import Call, MemoryItem
from ._config import resolve
from ._errors import ConnectionFailed
from ._models import (
    BatchResult,
    Coord,
    DeleteResult,
    GraphPath,
    Health,
    LinkResult,
    Memory,
    MemoryType,
    MintedToken,
    NamespacePolicy,
    Neighbors,
    SearchHit,
    Stats,
    StoreResult,
    TokenInfo,
    UnlinkResult,
    VersionsPage,
)
from ._retry import Attempts, RetryPolicy

T = TypeVar("T")


class AsyncSomaClient:
    """The asyncio twin of :class:`SomaClient` (same arguments; ``sleep`` is awaited).

    Use it as ``async with AsyncSomaClient() as soma:``, or ``await soma.aclose()``.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        namespace: str | None = None,
        timeout: float | httpx.Timeout = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.connection = resolve(base_url, token, namespace)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.AsyncClient(
            base_url=self.connection.base_url,
            headers=self.connection.headers(),
            timeout=timeout,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncSomaClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _run(self, call: Call[T]) -> T:
        request = self._http.build_request(
            call.method, call.path, params=call.params, json=call.body
        )
        attempts = Attempts(self.retry, self._clock)
        while True:
            try:
                response = await self._http.send(request)
            except httpx.TransportError as exc:
                wait = attempts.after_error(exc)
                if wait is None:
                    raise ConnectionFailed.after(request, exc, attempts.made) from exc
            else:
                wait = calls.wait_before_retry(
                    call, attempts, response.status_code, response.headers
                )
                if wait is None:
                    return calls.finish(
                        call, response.status_code, response.headers, response.content
                    )
            await self._sleep(wait)

    # memories

    async def store(
        self,
        coord: Coord,
        payload: Mapping[str, Any],
        *,
        memory_type: MemoryType | None = None,
        importance: float | None = None,
        vector: Sequence[float] | None = None,
        ttl_seconds: int | None = None,
        expires_at: datetime | str | None = None,
        refresh_on_read: bool = False,
    ) -> StoreResult:
        """Store a memory (an upsert); see :meth:`SomaClient.store`."""
        expiry = calls.Expiry(ttl_seconds, expires_at, refresh_on_read)
        return await self._run(calls.store(coord, payload, memory_type, importance, vector, expiry))

    async def store_batch(
        self, items: Iterable[MemoryItem | Mapping[str, Any]], *, atomic: bool = False
    ) -> BatchResult:
        """Store many memories in one transaction; see :meth:`SomaClient.store_batch`."""
        return await self._run(calls.store_batch(items, atomic))

    async def get(self, coord: Coord, *, as_of: datetime | str | None = None) -> Memory:
        """The live memory at ``coord``; see :meth:`SomaClient.get` (``as_of`` included)."""
        return await self._run(calls.get(coord, as_of))

    async def versions(self, coord: Coord, *, after: int = 0, limit: int = 100) -> VersionsPage:
        """One page of versions newer than ``after``, oldest first."""
        return await self._run(calls.versions(coord, after, limit))

    async def iter_versions(self, coord: Coord, *, page_size: int = 100) -> AsyncIterator[Memory]:
        """Every version, oldest first, following ``next_after`` page by page."""
        after: int | None = 0
        while after is not None:
            page = await self.versions(coord, after=after, limit=page_size)
            for memory in page.versions:
                yield memory
            after = calls.next_after(after, page)

    async def delete(self, coord: Coord) -> DeleteResult:
        """Delete a memory and its versions; deleting twice answers ``deleted=False``."""
        return await self._run(calls.delete(coord))

    async def search(
        self,
        query: str | None = None,
        *,
        vector: Sequence[float] | None = None,
        top_k: int = 10,
        filters: Mapping[str, Any] | None = None,
        memory_type: MemoryType | Sequence[MemoryType] | None = None,
        consistency: Literal["strong", "session", "bounded", "eventually"] | None = None,
        expand: Mapping[str, Any] | None = None,
        mode: Literal["vector", "keyword", "hybrid"] | None = None,
        rank: Literal["similarity", "blended"] | None = None,
    ) -> list[SearchHit]:
        """The memories nearest to ``query`` (or ``vector``); see :meth:`SomaClient.search`."""
        return await self._run(
            calls.search(
                query,
                vector,
                top_k,
                filters,
                memory_type,
                consistency,
                expand=expand,
                mode=mode,
                rank=rank,
            )
        )

    # operations

    # API tokens: need an admin token (and a server with authentication on)

    async def create_token(
        self,
        namespaces: Sequence[str],
        role: Literal["read", "write", "admin"],
        *,
        expires_at: datetime | str | None = None,
        description: str | None = None,
    ) -> MintedToken:
        """Mint a token for ``namespaces`` (``"*"`` for all); its secret is in ``.token``, once."""
        return await self._run(calls.create_token(namespaces, role, expires_at, description))

    async def list_tokens(self) -> list[TokenInfo]:
        """The tokens not revoked, of the namespaces this admin token holds."""
        return await self._run(calls.list_tokens())

    async def revoke_token(self, token_id: str) -> None:
        """Revoke a token by its id; it stops working at once (within seconds on other replicas)."""
        await self._run(calls.revoke_token(token_id))

    # namespace policies: need an admin token of the namespace

    async def get_policy(self, namespace: str) -> NamespacePolicy:
        """The namespace's effective policy: each value with its source (its own or settings)."""
        return await self._run(calls.get_policy(namespace))

    async def set_policy(
        self,
        namespace: str,
        *,
        default_ttl_seconds: Mapping[str, int] | None = None,
        max_memories: int | None = None,
        clear: Sequence[str] = (),
    ) -> NamespacePolicy:
        """Set the values given, clear those named in ``clear`` (``"episodic"``, ``"semantic"``,
        ``"max_memories"``: the settings apply again) and keep the rest; the effective policy."""
        call = calls.set_policy(namespace, default_ttl_seconds, max_memories, clear)
        return await self._run(call)

    async def clear_policy(self, namespace: str) -> bool:
        """Clear the namespace's policy; whether it had one."""
        return await self._run(calls.clear_policy(namespace))

    async def stats(self) -> Stats:
        """Counts of this client's namespace."""
        return await self._run(calls.stats())

    async def health(self) -> Health:
        """Each backend's state and the degradation mode in force."""
        return await self._run(calls.health())

    async def alive(self) -> bool:
        """``/healthz``: the process answers (no token needed)."""
        return await self._run(calls.alive())

    async def ready(self) -> bool:
        """``/readyz``: True when the canonical and vector stores answer, False when not."""
        return await self._run(calls.ready())

    # graph: links between memories of the namespace (503 Unavailable while the server runs
    # without PostgreSQL)

    async def link(
        self,
        from_coord: Coord,
        to_coord: Coord,
        link_type: str,
        *,
        strength: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> LinkResult:
        """Link two memories with a typed link (:class:`NotFound` if either is missing); linking
        again with the same type updates its strength and metadata."""
        return await self._run(calls.link(from_coord, to_coord, link_type, strength, metadata))

    async def unlink(
        self, from_coord: Coord, to_coord: Coord, link_type: str | None = None
    ) -> UnlinkResult:
        """Remove the link of ``link_type`` from one memory to another (every type: None)."""
        return await self._run(calls.unlink(from_coord, to_coord, link_type))

    async def neighbors(
        self,
        coord: Coord,
        *,
        k_hop: int | None = None,
        link_type: str | None = None,
        limit: int | None = None,
        direction: Literal["out", "in", "both"] | None = None,
    ) -> Neighbors:
        """The nearest ``limit`` memories within ``k_hop`` links of ``coord``, following links
        forward (``direction="out"``, the server's default), backward or both ways."""
        return await self._run(calls.neighbors(coord, k_hop, link_type, limit, direction))

    async def path(
        self,
        from_coord: Coord,
        to_coord: Coord,
        *,
        max_length: int | None = None,
        link_type: str | None = None,
        direction: Literal["out", "in", "both"] | None = None,
    ) -> GraphPath:
        """A shortest chain of links between two memories (``found=False`` if none)."""
        return await self._run(calls.path(from_coord, to_coord, max_length, link_type, direction))

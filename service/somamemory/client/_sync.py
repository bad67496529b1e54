"""The blocking client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
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


class SomaClient:
    """A SomaMemory client on one connection pool; use it as a context manager, or ``close()``.

    ``base_url``, ``token`` and ``namespace`` default to ``SOMA_URL`` (else
    ``http://127.0.0.1:10101``), ``SOMA_API_TOKEN`` and ``SOMA_NAMESPACE`` (else the server's
    default namespace). Failures raise the typed errors of :mod:`somamemory.client`; 503, 429 and
    connection failures are retried by ``retry`` (writes are upserts, so this is safe), waiting
    with ``sleep`` and measuring the time budget with ``clock`` (both injectable for tests).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        namespace: str | None = None,
        timeout: float | httpx.Timeout = 10.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.connection = resolve(base_url, token, namespace)
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            base_url=self.connection.base_url,
            headers=self.connection.headers(),
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SomaClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, call: Call[T]) -> T:
        request = self._http.build_request(
            call.method, call.path, params=call.params, json=call.body
        )
        attempts = Attempts(self.retry, self._clock)
        while True:
            try:
                response = self._http.send(request)
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
            self._sleep(wait)

    # memories

    def store(
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
        """Store a memory (an upsert: the version increments); answers once it is durable.

        ``ttl_seconds`` or ``expires_at``: the memory expires then (never answered after);
        ``refresh_on_read``: each read restarts its TTL.
        """
        expiry = calls.Expiry(ttl_seconds, expires_at, refresh_on_read)
        return self._run(calls.store(coord, payload, memory_type, importance, vector, expiry))

    def store_batch(
        self, items: Iterable[MemoryItem | Mapping[str, Any]], *, atomic: bool = False
    ) -> BatchResult:
        """Store many memories in one transaction, a result per item.

        Invalid items answer for themselves and the others are written; with ``atomic=True``
        one invalid item writes nothing and raises :class:`BatchRejected` (with every item's fate).
        """
        return self._run(calls.store_batch(items, atomic))

    def get(self, coord: Coord, *, as_of: datetime | str | None = None) -> Memory:
        """The live memory at ``coord`` (:class:`NotFound` if none).

        ``as_of`` asks for the version live at that time and needs a server with time travel;
        a server without it ignores the parameter and answers the live version.
        """
        return self._run(calls.get(coord, as_of))

    def versions(self, coord: Coord, *, after: int = 0, limit: int = 100) -> VersionsPage:
        """One page of versions newer than ``after``, oldest first."""
        return self._run(calls.versions(coord, after, limit))

    def iter_versions(self, coord: Coord, *, page_size: int = 100) -> Iterator[Memory]:
        """Every version, oldest first, following ``next_after`` page by page."""
        after: int | None = 0
        while after is not None:
            page = self.versions(coord, after=after, limit=page_size)
            yield from page.versions
            after = calls.next_after(after, page)

    def delete(self, coord: Coord) -> DeleteResult:
        """Delete a memory and its versions; deleting twice answers ``deleted=False``."""
        return self._run(calls.delete(coord))

    def search(
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
        """The memories that best match ``query`` text (or ``vector``), best first.

        ``mode``: ``"hybrid"`` (the server's default for text: meaning and exact words fused),
        ``"vector"`` (meaning only) or ``"keyword"`` (PostgreSQL full text only). ``rank``:
        ``"similarity"`` (the mode's order) or ``"blended"`` (with importance and recency,
        README "Expiry and decay").

        ``filters``: the typed filter language (README, "Filters"): a value (equality), a list
        (membership) or an operator object (``{"$gte": 0.5}``) per field, ``$and``/``$or``/``$not``
        to combine; all keys must hold. ``consistency``: how fresh the vector index
        must be (the server's default: this replica's own writes). ``expand``:
        ``{"link_type": ..., "depth": 1}`` (``{}``: every type) adds the memories one link out
        of the hits, after them, each with ``via`` set.
        """
        return self._run(
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

    def create_token(
        self,
        namespaces: Sequence[str],
        role: Literal["read", "write", "admin"],
        *,
        expires_at: datetime | str | None = None,
        description: str | None = None,
    ) -> MintedToken:
        """Mint a token for ``namespaces`` (``"*"`` for all); its secret is in ``.token``, once."""
        return self._run(calls.create_token(namespaces, role, expires_at, description))

    def list_tokens(self) -> list[TokenInfo]:
        """The tokens not revoked, of the namespaces this admin token holds."""
        return self._run(calls.list_tokens())

    def revoke_token(self, token_id: str) -> None:
        """Revoke a token by its id; it stops working at once (within seconds on other replicas)."""
        self._run(calls.revoke_token(token_id))

    # namespace policies: need an admin token of the namespace

    def get_policy(self, namespace: str) -> NamespacePolicy:
        """The namespace's effective policy: each value with its source (its own or settings)."""
        return self._run(calls.get_policy(namespace))

    def set_policy(
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
        return self._run(call)

    def clear_policy(self, namespace: str) -> bool:
        """Clear the namespace's policy; whether it had one."""
        return self._run(calls.clear_policy(namespace))

    def stats(self) -> Stats:
        """Counts of this client's namespace."""
        return self._run(calls.stats())

    def health(self) -> Health:
        """Each backend's state and the degradation mode in force."""
        return self._run(calls.health())

    def alive(self) -> bool:
        """``/healthz``: the process answers (no token needed)."""
        return self._run(calls.alive())

    def ready(self) -> bool:
        """``/readyz``: True when the canonical and vector stores answer, False when not.

        A server that cannot be reached raises :class:`ConnectionFailed` (after retries).
        """
        return self._run(calls.ready())

    # graph: links between memories of the namespace (503 Unavailable while the server runs
    # without PostgreSQL)

    def link(
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
        return self._run(calls.link(from_coord, to_coord, link_type, strength, metadata))

    def unlink(
        self, from_coord: Coord, to_coord: Coord, link_type: str | None = None
    ) -> UnlinkResult:
        """Remove the link of ``link_type`` from one memory to another (every type: None)."""
        return self._run(calls.unlink(from_coord, to_coord, link_type))

    def neighbors(
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
        return self._run(calls.neighbors(coord, k_hop, link_type, limit, direction))

    def path(
        self,
        from_coord: Coord,
        to_coord: Coord,
        *,
        max_length: int | None = None,
        link_type: str | None = None,
        direction: Literal["out", "in", "both"] | None = None,
    ) -> GraphPath:
        """A shortest chain of links between two memories (``found=False`` if none)."""
        return self._run(calls.path(from_coord, to_coord, max_length, link_type, direction))

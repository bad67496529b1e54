"""Answers of a store kept for a short time, per process: a busy key costs one lookup per
interval, and a change reaches every replica within it (the replica that made it, at once).

While the store is away, a key seen before keeps its last answer; an unknown one raises
``BackendUnavailable`` (the caller decides what that means). Used for minted tokens
(``access.py``) and namespace policies (``policies.py``).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from .errors import BackendUnavailable

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Seen(Generic[V]):
    value: V
    at: float  # monotonic time of the lookup


class RecentAnswers(Generic[K, V]):
    """At most ``max_kept`` answers, each reused for ``seconds``, least recently read first out."""

    def __init__(self, seconds: float, *, max_kept: int = 10_000) -> None:
        self.seconds = seconds
        self._max_kept = max_kept
        self._seen: OrderedDict[K, _Seen[V]] = OrderedDict()
        self._asking: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, lookup: Callable[[], Awaitable[V]]) -> V:
        """The answer for ``key``: kept, else ``lookup()`` (kept from now on), else, while the
        store is away (``BackendUnavailable``), the last answer if there is one. Callers that
        find the same key due at once share one lookup (a busy key expiring would otherwise
        send one query per request in flight)."""
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen.at < self.seconds:
            return seen.value
        asking = self._asking.get(key)
        if asking is None:
            asking = asyncio.ensure_future(self._lookup(key, lookup, now))
            self._asking[key] = asking
            asking.add_done_callback(lambda _: self._asking.pop(key, None))
        try:
            return await asyncio.shield(asking)
        except BackendUnavailable:
            if seen is None:
                raise
            return seen.value

    async def _lookup(self, key: K, lookup: Callable[[], Awaitable[V]], now: float) -> V:
        value = await lookup()
        self.put(key, value, now)
        return value

    def put(self, key: K, value: V, at: float | None = None) -> None:
        """Keep ``value`` as the answer for ``key`` (a change this process made itself)."""
        self._seen[key] = _Seen(value, time.monotonic() if at is None else at)
        self._seen.move_to_end(key)
        while len(self._seen) > self._max_kept:
            self._seen.popitem(last=False)

    def forget(self, matches: Callable[[V], bool]) -> None:
        """Drop the answers for which ``matches`` is true."""
        for key, seen in list(self._seen.items()):
            if matches(seen.value):
                del self._seen[key]

"""milvus-lite reads that never miss rows a flush is moving, and never wait for a merge.

milvus-lite 3.2 flushes by swapping in an empty memtable first, then writing the frozen one to
a segment and publishing it. A search or query running in between reads the new, empty memtable
and the old segments, and misses every row of that flush: a memory written a moment ago (and
acknowledged) was absent from search while the write path's periodic flush ran. Here reads
share a per-collection lock that a flush takes alone, so a read sees the rows either in the
memtable or in the published segment.

Every read (and every upsert, per row) also took lite's maintenance lock to copy the segment
list and the delete marks, and a background merge holds that lock while it reads, merges and
writes its files and loads the result: under sustained writes, searches waited for merges
(p99 in the hundreds of milliseconds), and a flush waiting for a merge held back every read
behind it. So the segment list and a copy of the marks are published each time lite refreshes
its segments (after loading, every flush and every merge, under its lock), reads take the last
published pair without a lock, and a flush takes the maintenance lock before it shuts reads
out, so that it waits for a merge while reads go on. A published pair stays consistent: a
merge's input segments stay readable in memory, and marks are dropped only in a new pair.

Searches (with the store's own executor installed) do not wait for a flush either: it shut
them out for 30-50 ms a second under steady writes. A flush first names the memtable it is
about to freeze next to the published pair, and a search pins the pair, that memtable and the
live one together (re-reading until none moved meanwhile). Until the flush publishes the
segment it wrote, the pinned view holds the frozen memtable's rows and deletes; afterwards the
segment holds them and the view names no frozen memtable. Lite's own reads (query, get) still
take the lock.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .milvus_lite_patch import patch

log = logging.getLogger(__name__)

_READS = ("query", "get")
_PATCHED = (
    "search",
    *_READS,
    "_trigger_flush",
    "_refresh_segment_cache",
    "_read_snapshot",
    "drop_partition",
)


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers (no starvation).

    Also holds the collection's view: the last published (segments, delete marks) pair, and the
    memtable a flush is moving into a segment (None when no flush is under way)."""

    def __init__(self) -> None:
        self.view: tuple[tuple[Any, Any] | None, Any] = (None, None)
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            while self._writing or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if not self._readers:
                    self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            while self._writing or self._readers:
                self._cond.wait()
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


_locks: weakref.WeakKeyDictionary[Any, ReadWriteLock] = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()
_pinned = threading.local()  # the view the calling thread's search runs on


class ReadAlone(Exception):
    """Raised by a search that cannot run on a pinned view (it defers to lite's own executor,
    which knows one memtable): the search runs again with flushes shut out."""


# search executors that read ``pinned_memtables()`` (lite's own reads its one memtable)
pinned_view_executors: set[Callable[..., Any]] = set()


def pinned_memtables() -> tuple[Any, ...] | None:
    """The memtables the calling thread's search reads, oldest first (None: not pinned)."""
    return getattr(_pinned, "memtables", None)


def _lock_of(collection: Any) -> ReadWriteLock:
    with _locks_guard:
        lock = _locks.get(collection)
        if lock is None:
            lock = _locks[collection] = ReadWriteLock()
        return lock


def install_flush_visibility() -> None:
    """Make lite's reads and flushes exclusive of each other (searches run by an executor of
    ``pinned_view_executors``: pinned to a consistent view instead), and reads independent of
    its maintenance lock, per collection (once)."""
    try:
        from milvus_lite.engine import collection as lite_collection
        from milvus_lite.engine.collection import Collection
    except ImportError:
        return
    unsafe = "a search during a flush may miss the rows being flushed"
    if not all(hasattr(Collection, name) for name in _PATCHED):
        log.warning("milvus-lite: %s", unsafe)  # all or none
        return

    def as_reader(read: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(read)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _lock_of(self).reading():
                return read(self, *args, **kwargs)

        return guarded

    def alone(flush: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(flush)
        def flush_alone(self: Any, *args: Any, **kwargs: Any) -> Any:
            # lite's maintenance lock first (re-entrant: the flush takes it again), so a flush
            # waits for a merge while reads go on, and shuts reads out only for its own part
            maintenance = getattr(self, "_maintenance_lock", None) or contextlib.nullcontext()
            lock = _lock_of(self)
            with maintenance, lock.writing():
                # named before lite swaps in a new memtable; publishing the flushed segment
                # clears it
                lock.view = (lock.view[0], self._memtable)
                return flush(self, *args, **kwargs)

        return flush_alone

    def publishing(refresh: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(refresh)
        def refresh_and_publish(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = refresh(self, *args, **kwargs)
            segments = getattr(self, "_segment_cache", None)
            marks = getattr(self, "_delta_index", None)
            if isinstance(segments, dict) and marks is not None:
                _lock_of(self).view = ((tuple(segments.values()), marks.frozen_copy()), None)
            return result

        return refresh_and_publish

    def from_published(read_snapshot: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(read_snapshot)
        def published_snapshot(self: Any) -> Any:
            pinned = getattr(_pinned, "snapshot", None)
            if pinned is not None:
                return pinned
            published = _lock_of(self).view[0]
            return published if published is not None else read_snapshot(self)

        return published_snapshot

    def republishing(drop: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(drop)
        def drop_and_republish(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = drop(self, *args, **kwargs)  # it evicts segments without a refresh
            with self._maintenance_lock:
                self._refresh_segment_cache()
            return result

        return drop_and_republish

    def pinned(search: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(search)
        def pinned_search(self: Any, *args: Any, **kwargs: Any) -> Any:
            lock = _lock_of(self)
            while True:  # the view and the live memtable, none moved in between
                view = lock.view
                memtable = self._memtable
                if lock.view is view:
                    break
            published, flushing = view
            executor = getattr(lite_collection, "execute_search_with_index", None)
            if published is not None and executor in pinned_view_executors:
                _pinned.snapshot = published
                moving = flushing is not None and flushing is not memtable
                _pinned.memtables = (flushing, memtable) if moving else (memtable,)
                try:
                    return search(self, *args, **kwargs)
                except ReadAlone:
                    pass
                finally:
                    _pinned.snapshot = _pinned.memtables = None
            with lock.reading():
                return search(self, *args, **kwargs)

        return pinned_search

    for name in _READS:
        patch(Collection, name, as_reader, otherwise=unsafe)
    patch(Collection, "search", pinned, otherwise=unsafe)
    patch(Collection, "drop_partition", republishing, otherwise=unsafe)
    patch(Collection, "_trigger_flush", alone, otherwise=unsafe)
    patch(Collection, "_refresh_segment_cache", publishing, otherwise=unsafe)
    patch(Collection, "_read_snapshot", from_published, otherwise=unsafe)

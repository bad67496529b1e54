"""milvus-lite reads that never miss rows a flush is moving from memory to disk.

milvus-lite 3.2 flushes by swapping in an empty memtable first, then writing the frozen one to
a segment and publishing it. A search or query running in between reads the new, empty memtable
and the old segments, and misses every row of that flush: a memory written a moment ago (and
acknowledged) was absent from search while the write path's periodic flush ran. Here reads
share a per-collection lock that a flush takes alone, so a read sees the rows either in the
memtable or in the published segment. Flushes are short (writing one small segment); the
background merges and index builds, the long part, are not covered and need not be.
"""

from __future__ import annotations

import functools
import logging
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

_LITE_VERSIONS = ("3.2.",)
_READS = ("search", "query", "get")
_install_lock = threading.Lock()
_installed = False


class ReadWriteLock:
    """Many readers or one writer; a waiting writer holds back new readers (no starvation)."""

    def __init__(self) -> None:
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


def _lock_of(collection: Any) -> ReadWriteLock:
    with _locks_guard:
        lock = _locks.get(collection)
        if lock is None:
            lock = _locks[collection] = ReadWriteLock()
        return lock


def install_flush_visibility() -> None:
    """Make lite's reads and flushes exclusive of each other, per collection (once)."""
    global _installed
    try:
        import milvus_lite
        from milvus_lite.engine.collection import Collection
    except ImportError:
        return
    with _install_lock:
        if _installed:
            return
        flush: Callable[..., Any] | None = getattr(Collection, "_trigger_flush", None)
        reads = {name: getattr(Collection, name, None) for name in _READS}
        if (
            flush is None
            or None in reads.values()
            or not str(milvus_lite.__version__).startswith(_LITE_VERSIONS)
        ):
            log.warning(
                "milvus-lite %s: a search during a flush may miss the rows being flushed",
                milvus_lite.__version__,
            )
            return

        def as_reader(read: Callable[..., Any]) -> Callable[..., Any]:
            @functools.wraps(read)
            def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
                with _lock_of(self).reading():
                    return read(self, *args, **kwargs)

            return guarded

        @functools.wraps(flush)
        def flush_alone(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _lock_of(self).writing():
                return flush(self, *args, **kwargs)

        for name, read in reads.items():
            setattr(Collection, name, as_reader(read))  # type: ignore[arg-type]
        Collection._trigger_flush = flush_alone  # type: ignore[method-assign]
        _installed = True

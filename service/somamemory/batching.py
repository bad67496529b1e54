"""Group commit: concurrent writes coalesced into one multi-row write, each caller answered
only once its own batch has committed.

A batch is flushed when it holds ``size`` items or ``flush_ms`` after its first item arrived.
Up to ``in_flight`` batches are written at once, so the next batch gathers (and its commit
starts) while the last one is still being indexed. Batches in flight together hold only writes
that were concurrent (a caller waits for its answer before it writes again), so any order among
them is a valid one; the write function keeps commit and index order the same for each
coordinate (``WritePath.write_in_order`` holds its locks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from .errors import BackendUnavailable

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Collects items from many callers and hands them to ``write`` in batches."""

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        *,
        size: int,
        flush_ms: float,
        on_flush: Callable[[int, float], None] | None = None,
        in_flight: int = 1,
    ) -> None:
        self._write = write
        self._slots = asyncio.Semaphore(in_flight)
        self._flushing: set[asyncio.Task[None]] = set()
        self._size = size
        self._flush_seconds = flush_ms / 1000
        self._on_flush = on_flush
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._arrived = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="somamemory-batcher")

    async def submit(self, item: Item) -> Result:
        """Queue one item; return its result once its batch has been written."""
        if self._closing:
            raise BackendUnavailable("batcher", "the service is shutting down")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._arrived.set()
        if len(self._queue) >= self._size:
            self._full.set()
        return await future

    async def close(self) -> None:
        """Stop accepting, write everything queued, then stop."""
        self._closing = True
        self._full.set()
        self._arrived.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._arrived.wait()
            if not self._queue:
                if self._closing:
                    return
                self._arrived.clear()
                continue
            if len(self._queue) < self._size and not self._closing:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), self._flush_seconds)
            batch, self._queue = self._queue[: self._size], self._queue[self._size :]
            if len(self._queue) < self._size:
                self._full.clear()
            await self._slots.acquire()
            task = asyncio.create_task(self._flush(batch), name="somamemory-batch-flush")
            self._flushing.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[None]) -> None:
        self._flushing.discard(task)
        self._slots.release()

    async def _flush(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        started = time.perf_counter()
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:  # every caller of this batch gets the failure
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
        if self._on_flush is not None:
            self._on_flush(len(batch), time.perf_counter() - started)

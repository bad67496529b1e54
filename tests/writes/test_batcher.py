"""The group-commit batcher's own rules, driven with a recording write function."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from somamemory.batching import Batcher
from somamemory.errors import BackendUnavailable


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0)
        if self.fail:
            raise RuntimeError("disk on fire")
        return [item * 10 for item in items]


async def test_a_full_batch_is_written_at_once_and_each_caller_gets_its_own_result() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.write, size=3, flush_ms=10_000)
    results = await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(3))), 5)
    assert results == [0, 10, 20]
    assert recorder.batches == [[0, 1, 2]]
    await batcher.close()


async def test_a_partial_batch_is_written_when_the_interval_passes() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.write, size=100, flush_ms=20)
    assert await asyncio.wait_for(asyncio.gather(batcher.submit(1), batcher.submit(2)), 5) == [
        10,
        20,
    ]
    assert recorder.batches == [[1, 2]]
    await batcher.close()


async def test_order_is_kept_across_batches() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.write, size=4, flush_ms=1)
    await asyncio.wait_for(asyncio.gather(*(batcher.submit(i) for i in range(10))), 5)
    assert [item for batch in recorder.batches for item in batch] == list(range(10))
    assert all(len(batch) <= 4 for batch in recorder.batches)
    await batcher.close()


async def test_close_drains_what_is_queued_then_refuses_new_work() -> None:
    recorder = Recorder()
    batcher: Batcher[int, int] = Batcher(recorder.write, size=100, flush_ms=60_000)
    pending = [asyncio.create_task(batcher.submit(i)) for i in range(5)]
    await asyncio.sleep(0)
    await asyncio.wait_for(batcher.close(), 5)  # long before the 60 s interval
    assert [task.result() for task in pending] == [0, 10, 20, 30, 40]
    with pytest.raises(BackendUnavailable, match="shutting down"):
        await batcher.submit(9)


async def test_a_failed_write_fails_every_caller_of_that_batch() -> None:
    batcher: Batcher[int, int] = Batcher(Recorder(fail=True).write, size=2, flush_ms=10)
    outcomes = await asyncio.gather(batcher.submit(1), batcher.submit(2), return_exceptions=True)
    assert all(isinstance(o, RuntimeError) for o in outcomes)
    await batcher.close()


class Gated:
    """A write that holds each batch until the test lets it go."""

    def __init__(self) -> None:
        self.started: list[list[int]] = []
        self.release = asyncio.Event()
        self.second_started = asyncio.Event()

    async def write(self, items: Sequence[int]) -> list[int]:
        self.started.append(list(items))
        if len(self.started) == 2:
            self.second_started.set()
        await self.release.wait()
        return [item * 10 for item in items]


async def test_the_next_batch_is_written_while_the_last_is_still_in_flight() -> None:
    gated = Gated()
    batcher: Batcher[int, int] = Batcher(gated.write, size=2, flush_ms=10_000, in_flight=2)
    first = asyncio.gather(batcher.submit(1), batcher.submit(2))
    second = asyncio.gather(batcher.submit(3), batcher.submit(4))
    await asyncio.wait_for(gated.second_started.wait(), 5)  # the first has not returned yet
    assert gated.started == [[1, 2], [3, 4]]
    gated.release.set()
    assert await asyncio.wait_for(first, 5) == [10, 20]
    assert await asyncio.wait_for(second, 5) == [30, 40]
    await batcher.close()


async def test_no_more_batches_are_in_flight_than_allowed() -> None:
    gated = Gated()
    batcher: Batcher[int, int] = Batcher(gated.write, size=1, flush_ms=10_000, in_flight=1)
    answers = [asyncio.create_task(batcher.submit(i)) for i in range(3)]
    for _ in range(20):  # let the batcher run as far as it can
        await asyncio.sleep(0)
    assert gated.started == [[0]]
    gated.release.set()
    assert await asyncio.wait_for(asyncio.gather(*answers), 5) == [0, 10, 20]
    assert gated.started == [[0], [1], [2]]
    await batcher.close()


async def test_close_waits_for_every_batch_in_flight() -> None:
    gated = Gated()
    batcher: Batcher[int, int] = Batcher(gated.write, size=1, flush_ms=10_000, in_flight=2)
    answers = [asyncio.create_task(batcher.submit(i)) for i in range(2)]
    await asyncio.wait_for(gated.second_started.wait(), 5)
    closing = asyncio.create_task(batcher.close())
    for _ in range(20):
        await asyncio.sleep(0)
    assert not closing.done()  # both batches are still being written
    gated.release.set()
    await asyncio.wait_for(closing, 5)
    assert [answer.result() for answer in answers] == [0, 10]

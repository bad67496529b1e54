"""Answers kept for a short time (recent.py): one lookup per key however many ask at once."""

from __future__ import annotations

import asyncio

import pytest

from somamemory.errors import BackendUnavailable
from somamemory.recent import RecentAnswers


class Store:
    def __init__(self) -> None:
        self.lookups = 0
        self.answer = "first"
        self.away = False
        self.gate = asyncio.Event()

    async def lookup(self) -> str:
        self.lookups += 1
        await self.gate.wait()
        if self.away:
            raise BackendUnavailable("postgres", "away")
        return self.answer


async def test_callers_asking_for_one_key_at_once_share_one_lookup() -> None:
    store = Store()
    recent: RecentAnswers[str, str] = RecentAnswers(60)
    asking = [asyncio.create_task(recent.get("ns", store.lookup)) for _ in range(64)]
    await asyncio.sleep(0)
    store.gate.set()
    assert await asyncio.gather(*asking) == ["first"] * 64
    assert store.lookups == 1
    assert await recent.get("ns", store.lookup) == "first"  # kept: no second lookup
    assert store.lookups == 1


async def test_a_lookup_that_fails_gives_every_caller_the_last_answer() -> None:
    store = Store()
    store.gate.set()
    recent: RecentAnswers[str, str] = RecentAnswers(0)  # every get looks up again
    assert await recent.get("ns", store.lookup) == "first"
    store.away = True
    asking = [asyncio.create_task(recent.get("ns", store.lookup)) for _ in range(8)]
    assert await asyncio.gather(*asking) == ["first"] * 8
    assert store.lookups == 2


async def test_an_unknown_key_while_the_store_is_away_fails_every_caller() -> None:
    store = Store()
    store.gate.set()
    store.away = True
    recent: RecentAnswers[str, str] = RecentAnswers(60)
    asking = [asyncio.create_task(recent.get("ns", store.lookup)) for _ in range(4)]
    outcomes = await asyncio.gather(*asking, return_exceptions=True)
    assert all(isinstance(outcome, BackendUnavailable) for outcome in outcomes)
    assert store.lookups == 1
    store.away = False
    assert await recent.get("ns", store.lookup) == "first"  # a failure is not kept


async def test_a_cancelled_caller_does_not_cancel_the_others_lookup() -> None:
    store = Store()
    recent: RecentAnswers[str, str] = RecentAnswers(60)
    first = asyncio.create_task(recent.get("ns", store.lookup))
    second = asyncio.create_task(recent.get("ns", store.lookup))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    store.gate.set()
    assert await second == "first"
    assert store.lookups == 1

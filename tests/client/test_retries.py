"""Retries: 503, 429 (honouring Retry-After) and connection failures, bounded; never other 4xx.

A real HTTP server on loopback answers as scripted; the injected sleep records each wait on a
fake clock, so nothing here really sleeps.
"""

from __future__ import annotations

import json
import time
from email.utils import formatdate

import pytest

from somamemory.client import (
    BadRequest,
    ConnectionFailed,
    RateLimited,
    RetryPolicy,
    Unavailable,
    parse_retry_after,
)

from ..conftest import free_port
from .conftest import TOKEN, MakeClient
from .recorder import Sleeps
from .scripted_server import Reply, ScriptedServer

STATS = {"namespace": "n", "total_memories": 1, "episodic": 1, "semantic": 0, "vector_count": 1}
# the largest wait every time: delays are exactly the caps, 0.1 * 2**n
WHOLE_JITTER = RetryPolicy(initial_delay=0.1, max_delay=1.0, random=lambda: 1.0)


def unavailable(**headers: str) -> Reply:
    return Reply(503, {"detail": "postgres is unavailable: scripted"}, headers)


async def test_a_503_is_retried_with_exponential_waits_until_the_answer(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(unavailable(), unavailable(), unavailable(), Reply(200, STATS))
    client = make_client(
        scripted.url, token=TOKEN, retry=WHOLE_JITTER, sleep=sleeps, clock=sleeps.clock
    )
    assert (await client.stats()).total_memories == 1
    assert sleeps.delays == pytest.approx([0.1, 0.2, 0.4])
    assert len(scripted.requests) == 4


async def test_waits_are_jittered_below_their_cap(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(*[unavailable()] * 4, Reply(200, STATS))
    policy = RetryPolicy(initial_delay=0.1, max_delay=0.3)
    client = make_client(scripted.url, token=TOKEN, retry=policy, sleep=sleeps, clock=sleeps.clock)
    await client.stats()
    caps = [0.1, 0.2, 0.3, 0.3]  # doubling, then held at max_delay
    assert len(sleeps.delays) == 4
    assert all(0 <= delay <= cap for delay, cap in zip(sleeps.delays, caps, strict=True))


async def test_a_429_waits_as_long_as_retry_after_says(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(Reply(429, {"detail": "slow down"}, {"Retry-After": "7"}), Reply(200, STATS))
    client = make_client(scripted.url, token=TOKEN, sleep=sleeps, clock=sleeps.clock)
    assert (await client.stats()).total_memories == 1
    assert sleeps.delays == [7.0]


async def test_a_retry_after_date_is_honoured(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    later = formatdate(time.time() + 20, usegmt=True)  # whole seconds, so up to 1 s early
    scripted.then(Reply(429, {"detail": "slow down"}, {"Retry-After": later}), Reply(200, STATS))
    client = make_client(scripted.url, token=TOKEN, sleep=sleeps, clock=sleeps.clock)
    await client.stats()
    assert len(sleeps.delays) == 1 and 15 < sleeps.delays[0] <= 20


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 500])
async def test_other_errors_are_never_retried(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps, status: int
) -> None:
    scripted.then(Reply(status, {"detail": "no"}), Reply(200, STATS))
    client = make_client(scripted.url, token=TOKEN, sleep=sleeps, clock=sleeps.clock)
    with pytest.raises(Exception) as error:
        await client.stats()
    assert getattr(error.value, "status", None) == status
    assert len(scripted.requests) == 1 and sleeps.delays == []


async def test_a_bad_request_is_raised_at_once_with_its_detail(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(Reply(400, {"detail": "coord part 2 is not a finite number"}))
    client = make_client(scripted.url, token=TOKEN, sleep=sleeps, clock=sleeps.clock)
    with pytest.raises(BadRequest, match="coord part 2 is not a finite number"):
        await client.store("1,x", {"k": 1})
    assert len(scripted.requests) == 1 and sleeps.delays == []


async def test_a_write_is_sent_again_unchanged_after_a_503(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    stored = {
        "coord": "1.0",
        "memory_type": "episodic",
        "ok": True,
        "namespace": "n",
        "version": 1,
        "indexed": True,
    }
    scripted.then(unavailable(), Reply(200, stored))
    client = make_client(scripted.url, token=TOKEN, sleep=sleeps, clock=sleeps.clock)
    assert (await client.store("1", {"text": "kept"})).version == 1
    first, second = scripted.requests
    assert first.method == second.method == "POST" and first.body == second.body
    assert json.loads(second.body) == {"coord": "1", "payload": {"text": "kept"}}


async def test_attempts_are_bounded_and_the_last_error_is_raised(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(*[unavailable()] * 10)
    policy = RetryPolicy(max_attempts=3, initial_delay=0.1)
    client = make_client(scripted.url, token=TOKEN, retry=policy, sleep=sleeps, clock=sleeps.clock)
    with pytest.raises(Unavailable) as error:
        await client.stats()
    assert error.value.detail == "postgres is unavailable: scripted"
    assert len(scripted.requests) == 3 and len(sleeps.delays) == 2


async def test_no_wait_starts_that_would_end_past_the_time_budget(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(*[unavailable()] * 10)
    policy = RetryPolicy(
        max_attempts=10, initial_delay=0.4, max_delay=10, total_seconds=1.0, random=lambda: 1.0
    )
    client = make_client(scripted.url, token=TOKEN, retry=policy, sleep=sleeps, clock=sleeps.clock)
    with pytest.raises(Unavailable):
        await client.stats()
    assert sleeps.delays == [0.4]  # the next wait, 0.8 s, would end at 1.2 s
    assert len(scripted.requests) == 2


async def test_a_retry_after_beyond_the_budget_raises_at_once(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(Reply(429, {"detail": "quota spent"}, {"Retry-After": "3600"}))
    client = make_client(scripted.url, token=TOKEN, sleep=sleeps, clock=sleeps.clock)
    with pytest.raises(RateLimited) as error:
        await client.stats()
    assert error.value.retry_after == 3600.0 and error.value.detail == "quota spent"
    assert sleeps.delays == [] and len(scripted.requests) == 1


async def test_a_refused_connection_is_retried_until_the_server_is_up(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    port = free_port()
    started: list[ScriptedServer] = []

    def start_server_while_waiting(seconds: float) -> None:
        sleeps(seconds)
        if len(sleeps.delays) == 2:  # refused twice, then the server comes up
            started.append(ScriptedServer(Reply(200, STATS), port=port).start())

    client = make_client(
        f"http://127.0.0.1:{port}",
        token=TOKEN,
        sleep=start_server_while_waiting,
        clock=sleeps.clock,
    )
    try:
        assert (await client.stats()).total_memories == 1
    finally:
        for server in started:
            server.stop()
    assert len(sleeps.delays) == 2 and len(started[0].requests) == 1


async def test_a_server_that_never_answers_ends_in_connection_failed(
    make_client: MakeClient, sleeps: Sleeps
) -> None:
    policy = RetryPolicy(max_attempts=3)
    url = f"http://127.0.0.1:{free_port()}"
    client = make_client(url, token=TOKEN, retry=policy, sleep=sleeps, clock=sleeps.clock)
    with pytest.raises(ConnectionFailed, match="after 3 attempt"):
        await client.stats()
    assert len(sleeps.delays) == 2


async def test_not_ready_is_an_answer_not_a_failure_to_retry(
    scripted: ScriptedServer, make_client: MakeClient, sleeps: Sleeps
) -> None:
    scripted.then(Reply(503, {"status": "unavailable"}))
    client = make_client(scripted.url, sleep=sleeps, clock=sleeps.clock)
    assert await client.ready() is False
    assert sleeps.delays == [] and len(scripted.requests) == 1


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now) == 0.0  # already past
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0


def test_a_policy_that_never_tries_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RetryPolicy(max_attempts=0)

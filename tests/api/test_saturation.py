"""Graceful saturation: a bounded number of requests run, a bounded queue waits, then 503.

Run against ``somamemory serve`` (real uvicorn, embedded default) with 2 requests in flight and
4 queued at most. Whatever the load, every answer is a 200 or a 503 with ``Retry-After`` and the
usual ``{"detail": ...}`` body, no connection is dropped, every acknowledged write can be read
back, and the probes and ``/metrics`` keep answering.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from ..serve import Serve

TOKEN = "sekrit"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
ENV = {
    "SOMA_API_TOKEN": TOKEN,
    "SOMA_FORCE_HASH_EMBEDDINGS": "1",  # judges the HTTP edge, not meaning
    "SOMA_MAX_INFLIGHT": "2",
    "SOMA_MAX_QUEUED": "4",
    "SOMA_QUEUE_TIMEOUT_SECONDS": "3",
    "SOMA_OVERLOAD_RETRY_AFTER_SECONDS": "2",
}
FLOOD = 150  # concurrent requests, far beyond 2 in flight + 4 queued


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    server = Serve(tmp_path_factory.mktemp("saturation") / "data", ENV)
    server.wait_ready()
    yield server
    server.stop()


def _client(served: Serve, connections: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(base_url=served.url, headers=HEADERS, limits=limits, timeout=60)


def _error_shape(served: Serve) -> set[str]:
    """The members of the service's other error answers (here: a memory that is not there)."""
    missing = httpx.get(f"{served.url}/memories/404,404", headers=HEADERS)
    assert missing.status_code == 404
    return set(missing.json())


def _assert_refusal(response: httpx.Response, shape: set[str]) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "2"
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == shape and "at capacity" in body["detail"]


async def _metric(client: httpx.AsyncClient, name: str) -> float:
    text = (await client.get("/metrics")).text
    match = re.search(rf"^{re.escape(name)} (\S+)$", text, flags=re.M)
    assert match, f"{name} not exported"
    return float(match.group(1))


async def _until(client: httpx.AsyncClient, name: str, value: float) -> None:
    """Poll ``/metrics`` until ``name`` reads ``value`` (the server's own view of its queue)."""
    for _ in range(300):
        if await _metric(client, name) == value:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{name} never reached {value}")


async def _probe_while(served: Serve, done: asyncio.Event) -> list[int]:
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
        while not done.is_set():
            for path in ("/healthz", "/readyz", "/metrics"):
                statuses.append((await client.get(path)).status_code)
    return statuses


async def test_a_flood_gets_200_or_503_with_retry_after_and_loses_no_write(served: Serve) -> None:
    shape = _error_shape(served)
    run = uuid.uuid4().hex[:8]
    acknowledged: dict[str, str] = {}
    refused: list[httpx.Response] = []
    async with _client(served, FLOOD) as client:

        async def one(i: int) -> httpx.Response:
            if i % 3 == 0:
                return await client.post("/memories/search", json={"query": "flood", "top_k": 5})
            text = f"flood {run} {i}"
            response = await client.post(
                "/memories", json={"coord": f"{i},7", "payload": {"text": text}}
            )
            if response.status_code == 200:
                acknowledged[f"{i},7"] = text
            return response

        done = asyncio.Event()
        probes = asyncio.create_task(_probe_while(served, done))
        for round_ in range(10):  # until the flood is refused at least once
            start = round_ * FLOOD
            answers = await asyncio.gather(
                *(one(i) for i in range(start, start + FLOOD)), return_exceptions=True
            )
            dropped = [answer for answer in answers if isinstance(answer, BaseException)]
            assert not dropped, dropped[:3]
            responses = [answer for answer in answers if isinstance(answer, httpx.Response)]
            assert {r.status_code for r in responses} <= {200, 503}, {
                r.status_code: r.text for r in responses if r.status_code not in (200, 503)
            }
            refused += [r for r in responses if r.status_code == 503]
            if refused:
                break
        done.set()
        probe_statuses = await probes

        assert refused, "a flood 25 times over the limits was never refused"
        for response in refused:
            _assert_refusal(response, shape)
        assert acknowledged, "nothing was admitted"
        assert set(probe_statuses) == {200}
        assert await _metric(client, 'somamemory_http_refused_requests_total{reason="queue_full"}')

        for coord, text in acknowledged.items():  # every acknowledged write is there
            stored = await client.get(f"/memories/{coord}")
            assert stored.status_code == 200, stored.text
            assert stored.json()["memory"]["payload"] == {"text": text}
        await _until(client, "somamemory_http_inflight_requests", 0)
        await _until(client, "somamemory_http_queued_requests", 0)


async def test_within_in_flight_plus_queued_nothing_is_refused(served: Serve) -> None:
    """Four clients at once on two slots: the extra ones wait in the queue, none is refused."""
    async with _client(served, 4) as client:

        async def worker(w: int) -> list[int]:
            statuses = []
            for i in range(15):
                body = {"coord": f"{w},{i},9", "payload": {"text": f"worker {w} item {i}"}}
                statuses.append((await client.post("/memories", json=body)).status_code)
            return statuses

        results = await asyncio.gather(*(worker(w) for w in range(4)))
    assert {status for statuses in results for status in statuses} == {200}


class Held:
    """The rest of a held request's body, to send when the test lets it go."""

    def __init__(self, writer: asyncio.StreamWriter, rest: bytes) -> None:
        self.writer, self.rest = writer, rest

    async def release(self) -> None:
        self.writer.write(self.rest)
        await self.writer.drain()


async def _hold_a_slot(served: Serve, coord: str) -> tuple[asyncio.StreamReader, Held]:
    """A store whose body is only half sent: admitted, it holds its slot until the rest comes."""
    body = json.dumps({"coord": coord, "payload": {"text": "held"}}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    head = (
        f"POST /memories HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {TOKEN}\r\n"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body[:10])
    await writer.drain()
    return reader, Held(writer, body[10:])


async def test_when_the_queue_waits_too_long_or_is_full_the_answer_is_503(served: Serve) -> None:
    shape = _error_shape(served)  # asked before the slots are taken
    async with _client(served, 16) as client:
        held = [await _hold_a_slot(served, f"{i},11") for i in range(2)]
        await _until(client, "somamemory_http_inflight_requests", 2)
        search = {"query": "anything", "top_k": 3}
        waiting = [
            asyncio.create_task(client.post("/memories/search", json=search)) for _ in "1234"
        ]
        await _until(client, "somamemory_http_queued_requests", 4)

        overflow = await client.post("/memories/search", json=search)  # the queue is full
        _assert_refusal(overflow, shape)
        assert "too many requests queued" in overflow.json()["detail"]
        for path in ("/healthz", "/readyz", "/metrics"):  # never queued
            assert (await client.get(path)).status_code == 200

        for response in await asyncio.gather(*waiting):  # the slots never came free in time
            _assert_refusal(response, shape)
            assert "queued over 3 s" in response.json()["detail"]

        for reader, request in held:  # an admitted request still runs to its answer
            await request.release()
            status_line = await reader.readline()
            assert status_line.startswith(b"HTTP/1.1 200"), status_line
            request.writer.close()
        for i in range(2):
            stored = await client.get(f"/memories/{i},11")
            assert (
                stored.status_code == 200 and stored.json()["memory"]["payload"]["text"] == "held"
            )
        timeouts = 'somamemory_http_refused_requests_total{reason="queue_timeout"}'
        assert await _metric(client, timeouts) >= 4
        await _until(client, "somamemory_http_inflight_requests", 0)

"""Every route the server serves today, through the sync and the async client alike."""

from __future__ import annotations

from datetime import datetime

import pytest

from somamemory.client import (
    BadRequest,
    BatchRejected,
    Forbidden,
    Memory,
    NotFound,
    SearchHit,
    StoreResult,
    Unauthorized,
)

from ..serve import Serve
from .adapters import Client
from .conftest import TOKEN, MakeClient

DIM = 384  # the server's default embedding dimension


async def test_a_stored_memory_reads_back_typed_under_any_spelling_of_its_coord(
    soma: Client, namespace: str
) -> None:
    stored = await soma.store(
        "1,2,3", {"text": "the user prefers tea"}, memory_type="semantic", importance=0.5
    )
    assert stored == StoreResult(
        coord="1.0,2.0,3.0",
        memory_type="semantic",
        ok=True,
        namespace=namespace,
        version=1,
        indexed=True,
    )
    for spelling in ("1.0, 2, 3", (1, 2, 3), [1.0, 2.0, 3.0]):
        memory = await soma.get(spelling)
        assert isinstance(memory, Memory)
        assert memory.payload == {"text": "the user prefers tea"}
        assert (memory.coord, memory.memory_type, memory.importance) == (
            "1.0,2.0,3.0",
            "semantic",
            0.5,
        )
        assert isinstance(memory.created_at, datetime) and memory.created_at.tzinfo is not None


async def test_every_version_is_listed_oldest_first_across_pages(soma: Client) -> None:
    for n in range(1, 6):
        assert (await soma.store("7", {"n": n})).version == n
    first = await soma.versions("7", limit=2)
    assert [m.payload["n"] for m in first.versions] == [1, 2]
    assert first.next_after == 2
    last = await soma.versions("7", after=4, limit=2)
    assert [m.payload["n"] for m in last.versions] == [5] and last.next_after is None
    every = await soma.all_versions("7", page_size=2)  # three pages
    assert [(m.version, m.payload["n"]) for m in every] == [(n, n) for n in range(1, 6)]


async def test_deleting_removes_the_memory_and_deleting_twice_says_so(soma: Client) -> None:
    await soma.store("4,4", {"text": "short-lived"})
    gone = await soma.delete("4.0,4.0")
    assert (gone.coord, gone.deleted) == ("4.0,4.0", True)
    with pytest.raises(NotFound) as missing:
        await soma.get("4,4")
    assert missing.value.status == 404 and missing.value.detail
    assert (await soma.delete("4,4")).deleted is False


async def test_a_batch_writes_the_valid_items_and_reports_each_invalid_one(soma: Client) -> None:
    result = await soma.store_batch(
        [
            {"coord": "10", "payload": {"text": "a"}},
            {"coord": "ten", "payload": {"text": "b"}},
            {"coord": (11, 12), "payload": {"text": "c"}, "memory_type": "semantic"},
        ]
    )
    assert (result.written, result.failed) == (2, 1)
    assert [item.status for item in result.results] == [200, 400, 200]
    assert result.results[1].detail and not result.results[1].ok
    assert result.results[2].coord == "11.0,12.0" and result.results[2].version == 1
    assert (await soma.get("11,12")).memory_type == "semantic"


async def test_an_atomic_batch_with_one_bad_item_writes_nothing(soma: Client) -> None:
    with pytest.raises(BatchRejected) as rejected:
        await soma.store_batch(
            [{"coord": "20", "payload": {"text": "good"}}, {"coord": "nan", "payload": {}}],
            atomic=True,
        )
    assert rejected.value.status == 400 and "nothing was written" in rejected.value.detail
    assert [(r.index, r.status) for r in rejected.value.results] == [(0, 409), (1, 400)]
    with pytest.raises(NotFound):
        await soma.get("20")


async def test_search_finds_by_text_by_vector_and_within_filters(soma: Client) -> None:
    await soma.store(
        "1", {"text": "green tea in the morning", "topic": "tea"}, memory_type="semantic"
    )
    await soma.store("2", {"text": "black tea after lunch", "topic": "tea"})
    await soma.store("3", {"text": "the deployment broke", "topic": "ops"})
    own = [0.0] * DIM
    own[0] = 1.0
    await soma.store("4", {"text": "has its own vector", "topic": "ops"}, vector=own)

    hits = await soma.search("green tea in the morning", top_k=3)  # hybrid, the default
    assert all(isinstance(hit, SearchHit) for hit in hits)
    assert hits[0].coord == "1.0" and hits[0].similarity == pytest.approx(1.0, abs=1e-3)
    assert hits[0].ranks == {"vector": 1, "keyword": 1}
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    by_meaning = await soma.search("green tea in the morning", top_k=3, mode="vector")
    assert by_meaning[0].coord == "1.0" and by_meaning[0].score == pytest.approx(1.0, abs=1e-3)
    by_words = await soma.search("deployment", top_k=3, mode="keyword")
    assert [hit.coord for hit in by_words] == ["3.0"] and by_words[0].similarity is None

    tea = await soma.search("tea", top_k=10, filters={"topic": "tea"})
    assert {hit.coord for hit in tea} == {"1.0", "2.0"}
    semantic = await soma.search("tea", top_k=10, memory_type="semantic")
    assert [hit.coord for hit in semantic] == ["1.0"]
    either = await soma.search("tea", top_k=10, filters={"topic": ["tea", "ops"]})
    assert len(either) == 4

    by_vector = await soma.search(vector=own, top_k=1)
    assert by_vector[0].coord == "4.0" and by_vector[0].payload["topic"] == "ops"


async def test_stats_count_this_namespace_only(
    soma: Client, live: Serve, make_client: MakeClient, namespace: str
) -> None:
    await soma.store("1", {"k": 1})
    await soma.store("2", {"k": 2})
    await soma.store("3", {"k": 3}, memory_type="semantic")
    stats = await soma.stats()
    assert (stats.namespace, stats.total_memories, stats.episodic, stats.semantic) == (
        namespace,
        3,
        2,
        1,
    )
    assert stats.namespaces == {namespace: 3}
    other = make_client(live.url, token=TOKEN, namespace=f"{namespace}-other")
    assert (await other.stats()).total_memories == 0
    with pytest.raises(NotFound):
        await other.get("1")


async def test_health_and_probes_report_a_working_server(soma: Client) -> None:
    health = await soma.health()
    assert health.kv_store and health.vector_store and not health.degraded
    assert health.backends["postgres"].kind == "embedded" and health.backends["postgres"].ok
    assert health.raw["embedder"]["kind"] == "hash"
    assert await soma.alive() is True
    assert await soma.ready() is True


async def test_tokens_are_minted_used_listed_and_revoked(
    soma: Client, live: Serve, make_client: MakeClient, namespace: str
) -> None:
    minted = await soma.create_token([namespace], "read", expires_at="2099-01-01T00:00:00Z")
    assert minted.info.role == "read" and minted.info.namespaces == (namespace,)
    assert minted.info.expires_at is not None and minted.info.expires_at.year == 2099
    assert minted.token not in repr(minted)  # a secret stays out of logs and tracebacks
    await soma.store("1", {"k": 1})
    reader = make_client(live.url, token=minted.token, namespace=namespace)
    assert (await reader.get("1")).payload == {"k": 1}
    with pytest.raises(Forbidden):
        await reader.store("2", {"k": 2})
    assert minted.info.id in {info.id for info in await soma.list_tokens()}
    await soma.revoke_token(minted.info.id)
    with pytest.raises(Unauthorized):
        await reader.get("1")


async def test_a_memory_can_expire_and_search_can_blend_importance(soma: Client) -> None:
    stored = await soma.store(
        "7,7", {"text": "a note that lives an hour"}, ttl_seconds=3600, refresh_on_read=True
    )
    got = await soma.get("7,7")
    assert got.expires_at is not None and got.version == stored.version
    # refreshed by the read itself: an hour from the read, a moment after the write
    assert 3600 <= (got.expires_at - got.updated_at).total_seconds() < 3700
    await soma.store("7,8", {"text": "a note that lives an hour, kept"}, importance=1.0)
    hits = await soma.search("a note that lives an hour", top_k=2, rank="blended")
    assert {hit.coord for hit in hits} == {"7.0,7.0", "7.0,8.0"}
    with pytest.raises(BadRequest, match="ttl"):
        await soma.store("7,9", {"text": "never"}, ttl_seconds=1, expires_at="2030-01-01T00:00:00Z")

"""Collections record the embedder that filled them; a legacy collection (no record) is told
from its vectors of a few memories PostgreSQL holds."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from somamemory.embeddings import HashEmbedder, text_of
from somamemory.embeddings.base import EmbedderInfo
from somamemory.reembed.plan import CollectionPlan, plan_collections
from somamemory.schema import upgrade_to_head
from somamemory.stores.collection_identity import (
    CollectionFacts,
    identity_text,
    in_family,
    parse_identity,
    physical_name,
)
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.milvus_collections import MilvusCatalogue
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_pool import Pool, create_pool
from somamemory.stores.postgres_reembed import PostgresReembed

from ..conftest import create_database, drop_database, free_port
from ..milvus_server import MilvusLiteServer

HASH32 = EmbedderInfo("hash", None, 32)
HASH64 = EmbedderInfo("hash", None, 64)
NAMESPACE = "legacy"
TEXTS = [f"memory {i} about {word}" for i, word in enumerate(["tea", "snow", "rope", "fig"])]


def test_an_identity_is_recorded_as_json_and_names_its_collection() -> None:
    onnx = EmbedderInfo("onnx", "all-MiniLM-L6-v2", 384)
    for info in (HASH32, onnx):
        assert parse_identity(identity_text(info)) == info
    assert json.loads(identity_text(onnx)) == {"kind": "onnx", "model": onnx.model, "dim": 384}
    for junk in (None, "", "{", "[]", '{"kind": "hash", "dim": 0}', '{"kind": "x", "dim": 3}'):
        assert parse_identity(junk) is None
    name = physical_name("soma_memories", onnx)
    assert name.startswith("soma_memories__") and len(name) == len("soma_memories__") + 8
    assert name != physical_name("soma_memories", HASH32) != physical_name("soma_memories", HASH64)
    assert in_family("soma_memories", name) and in_family("soma_memories", "soma_memories")
    assert not in_family("soma_memories", "soma_memories__x") and not in_family("soma", name)


@pytest.fixture(params=["lite", "server"])
def uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A milvus-lite file, or a server of this test's own: pymilvus keeps a connection to each
    server open, and an idle one is cut by the server, so the session's server is left alone."""
    if request.param == "lite":
        yield str(tmp_path / "v.db")
        return
    server = MilvusLiteServer(tmp_path / "milvus", free_port()).start()
    try:
        yield server.uri
    finally:
        server.stop()


def _catalogue(uri: str) -> MilvusCatalogue:
    return MilvusCatalogue(uri, token=None, timeout=5)


async def test_a_created_collection_records_its_embedder_across_reopening(uri: str) -> None:
    base = f"c_{uuid.uuid4().hex[:8]}"
    catalogue = _catalogue(uri)
    try:
        catalogue.open(physical_name(base, HASH32), dim=32, identity=HASH32)
        catalogue.open(base, dim=64)  # legacy: created without an identity
        catalogue.open(f"{base}_other", dim=8)  # not of the family
    finally:
        await catalogue.close()
    reopened = _catalogue(uri)
    try:
        family = await reopened.family(base)
        assert family == [
            CollectionFacts(base, None, 64, 0),
            CollectionFacts(physical_name(base, HASH32), HASH32, 32, 0),
        ]
        await reopened.record(base, HASH64)
        assert (await reopened.family(base))[0].identity == HASH64
        for facts in family:
            await reopened.drop(facts.name)
        await reopened.drop(f"{base}_other")
        assert not await reopened.exists(base)
    finally:
        await reopened.close()


@pytest.fixture
def database() -> Iterator[str]:
    url = create_database()  # its own: the samples are the database's latest memories
    upgrade_to_head(url)
    yield url
    drop_database(url)


@pytest.fixture
async def pool(database: str) -> AsyncIterator[Pool]:
    opened = await create_pool(database, min_size=1, max_size=2, timeout=5)
    connection: asyncpg.Connection = await asyncpg.connect(database)
    try:
        for i, text in enumerate(TEXTS, start=1):
            await connection.execute(
                "INSERT INTO memories (namespace, coord, memory_type, payload, version, "
                "created_at, updated_at) VALUES ($1, $2, 'episodic', $3::jsonb, 1, now(), now())",
                NAMESPACE,
                f"{i}.0",
                json.dumps({"text": text}),
            )
    finally:
        await connection.close()
    yield opened
    await opened.close()


async def _legacy(
    catalogue: MilvusCatalogue, pool: Pool, dim: int, *, random_vectors: bool
) -> None:
    """The collection ``legacy`` without a record, holding the memories' vectors: the hash
    embedder's of ``dim``, or random ones (an embedder nobody here knows)."""
    store: MilvusVectorStore = catalogue.open("legacy", dim=dim)
    memories = await PostgresStore(pool).get_many(NAMESPACE, [f"{i}.0" for i in range(1, 5)])
    found = list(memories.values())
    if random_vectors:
        rng = random.Random(7)
        vectors = [[rng.uniform(-1, 1) for _ in range(dim)] for _ in found]
    else:
        vectors = await HashEmbedder(dim).embed([text_of(m.payload) for m in found])
    await store.upsert(list(zip(found, vectors, strict=True)))
    await store.flush()


async def _plan(catalogue: MilvusCatalogue, pool: Pool, configured: HashEmbedder) -> CollectionPlan:
    async def open_collection(facts: CollectionFacts) -> MilvusVectorStore:
        return catalogue.open(facts.name, dim=facts.dim)

    return await plan_collections(
        catalogue,
        base="legacy",
        embedder=configured,
        samples=PostgresReembed(pool),
        open_collection=open_collection,
    )


async def test_a_legacy_collection_of_another_embedder_is_identified_and_recorded(
    tmp_path: Path, pool: Pool
) -> None:
    catalogue = _catalogue(str(tmp_path / "v.db"))
    try:
        await _legacy(catalogue, pool, 32, random_vectors=False)
        plan = await _plan(catalogue, pool, HashEmbedder(64))
        assert plan.target == physical_name("legacy", HASH64) and plan.target_rows == 0
        assert plan.previous == CollectionFacts("legacy", HASH32, 32, 4)
        assert plan.leftovers == ()
        assert (await catalogue.family("legacy"))[0].identity == HASH32  # recorded
    finally:
        await catalogue.close()


async def test_a_legacy_collection_of_the_configured_embedder_is_adopted(
    tmp_path: Path, pool: Pool
) -> None:
    catalogue = _catalogue(str(tmp_path / "v.db"))
    try:
        await _legacy(catalogue, pool, 32, random_vectors=False)
        plan = await _plan(catalogue, pool, HashEmbedder(32))
        assert plan == CollectionPlan("legacy", 4, None, ())
        assert (await catalogue.family("legacy"))[0].identity == HASH32
    finally:
        await catalogue.close()


async def test_an_empty_legacy_collection_is_adopted_where_its_dimension_fits(
    tmp_path: Path, pool: Pool
) -> None:
    catalogue = _catalogue(str(tmp_path / "v.db"))
    try:
        catalogue.open("legacy", dim=64)
        assert await _plan(catalogue, pool, HashEmbedder(64)) == CollectionPlan(
            "legacy", 0, None, ()
        )
        assert (await catalogue.family("legacy"))[0].identity == HASH64
    finally:
        await catalogue.close()


async def test_a_legacy_collection_of_an_unknown_embedder_stays_unknown(
    tmp_path: Path, pool: Pool
) -> None:
    catalogue = _catalogue(str(tmp_path / "v.db"))
    try:
        await _legacy(catalogue, pool, 32, random_vectors=True)
        plan = await _plan(catalogue, pool, HashEmbedder(64))
        assert plan.previous == CollectionFacts("legacy", None, 32, 4)
        assert (await catalogue.family("legacy"))[0].identity is None  # nothing recorded
    finally:
        await catalogue.close()


async def test_workers_recording_one_collection_s_embedder_at_once_all_succeed(
    tmp_path: Path,
) -> None:
    """Every worker of a new deployment records the embedder of the empty collection it finds
    at startup. The milvus-lite server writes a collection's properties through one temporary
    file, so two records at the same moment failed one of them, and that worker did not start."""
    import asyncio

    server = MilvusLiteServer(tmp_path / "milvus", free_port()).start()
    catalogues = [_catalogue(server.uri) for _ in range(4)]
    try:
        for round_ in range(8):
            name = f"w_{round_}_{uuid.uuid4().hex[:8]}"
            catalogues[0].open(name, dim=32)  # created without an identity, as a legacy one
            await asyncio.gather(*(catalogue.record(name, HASH32) for catalogue in catalogues))
            (facts,) = [f for f in await catalogues[0].family(name) if f.name == name]
            assert facts.identity == HASH32
    finally:
        for catalogue in catalogues:
            await catalogue.close()
        server.stop()

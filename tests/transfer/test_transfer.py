"""export -> import into an empty instance, re-import, format refusal, reindex: on real services.

The round trip carries expiry, the last read, delete history and the memory graph's links.

Hash embeddings throughout: these tests judge that memories, versions and vectors move intact,
not what the vectors mean, and identical text gives an identical hash vector (an exact hit).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from somamemory.interchange.fileformat import FORMAT_VERSION, TransferFileError
from somamemory.metrics import Metrics
from somamemory.models import Memory
from somamemory.runtime import running
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings
from somamemory.transfer import commands

from ..conftest import DIM, create_database, drop_database

pytestmark = pytest.mark.timeout(300)


def _instance(
    make_settings: Callable[..., Settings], prefix: str, data_dir: Path
) -> Iterator[Settings]:
    """A fresh, empty instance: its own database, milvus-lite file and cache keys."""
    url = create_database()
    try:
        upgrade_to_head(url)
        yield make_settings(
            postgres_url=url,
            data_dir=data_dir,
            redis_key_prefix=prefix,
            force_hash_embeddings=True,  # see the module docstring
        )
    finally:
        drop_database(url)


@pytest.fixture
def source(
    make_settings: Callable[..., Settings], redis_prefix: str, tmp_path: Path
) -> Iterator[Settings]:
    yield from _instance(make_settings, f"{redis_prefix}:source", tmp_path / "source")


@pytest.fixture
def target(
    make_settings: Callable[..., Settings], redis_prefix: str, tmp_path: Path
) -> Iterator[Settings]:
    yield from _instance(make_settings, f"{redis_prefix}:target", tmp_path / "target")


def _vector(seed: int) -> list[float]:
    return [((i * seed) % 7) - 3.0 + 0.5 for i in range(DIM)]


async def _fill(settings: Settings) -> None:
    """Memories with histories, a client vector, two namespaces, and a deleted one."""
    async with running(settings, Metrics()) as runtime:
        service = runtime.service
        for n, (text, kind) in enumerate(
            [
                ("tea at noon", "episodic"),
                ("prefers green tea", "semantic"),
                ("no sugar", "semantic"),
            ]
        ):
            await service.store_memory(
                "alpha", "1,2", {"text": text, "n": n}, memory_type=kind, importance=n / 3
            )
        await service.store_memory("alpha", "3.5", {"text": "own vector"}, vector=_vector(3))
        await service.store_memory("beta", "1,2", {"text": "another tenant", "ok": True})
        await service.store_memory("beta", "9", {"text": "gone soon"})
        await service.delete_memory("beta", "9")


async def _expiry_and_links(settings: Settings) -> None:
    """On top of ``_fill``: expiring memories, a recorded read, links, and a memory that has
    expired but that the sweeper has not removed yet (its links still there)."""
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    async with running(settings, Metrics()) as runtime:
        service = runtime.service
        await service.store_memory(
            "alpha", "7", {"text": "refreshed"}, ttl_seconds=3600, refresh_on_read=True
        )
        await service.store_memory("alpha", "8", {"text": "ends then"}, expires_at=later)
        await service.store_memory("beta", "5", {"text": "about to expire"}, ttl_seconds=60)
        await service.get_memory_json("alpha", "3.5")  # a read, which decay counts from
        assert await service.reads.flush(service.live.store) == 1
        graph = service.graph
        await graph.link("alpha", "1,2", "3.5", "caused_by", strength=0.8, metadata={"w": [1]})
        await graph.link("alpha", "1,2", "3.5", "related")
        await graph.link("alpha", "3.5", "7", "related", strength=0.25)
        await graph.link("alpha", "8", "1,2", "follows")
        await graph.link("beta", "1,2", "5", "related")
    connection = await asyncpg.connect(settings.postgres_url)
    try:  # expired a minute ago, with the running service gone: no sweeper took it yet
        await connection.execute(
            "UPDATE memories SET expires_at = now() - interval '1 minute' "
            "WHERE namespace = 'beta' AND coord = '5.0'"
        )
    finally:
        await connection.close()


async def _links(settings: Settings) -> list[tuple[Any, ...]]:
    """Every link with all its columns, straight from PostgreSQL."""
    connection = await asyncpg.connect(settings.postgres_url)
    try:
        rows = await connection.fetch(
            "SELECT namespace, from_coord, to_coord, link_type, strength, metadata::text, "
            "created_at FROM memory_links ORDER BY namespace, from_coord, to_coord, link_type"
        )
    finally:
        await connection.close()
    return [tuple(row) for row in rows]


# (namespace, coord) -> (the live memory or None when deleted, [(version, deleted_at)])
State = dict[tuple[str, str], tuple[Memory | None, list[tuple[Memory, datetime | None]]]]


async def _state(settings: Settings) -> State:
    """Every memory (vector included) with all its kept versions, straight from PostgreSQL."""
    connection = await asyncpg.connect(settings.postgres_url)
    try:
        await connection.set_type_codec(
            "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )
        live = await connection.fetch("SELECT * FROM memories")
        versions = await connection.fetch(
            "SELECT * FROM memory_versions ORDER BY namespace, coord, version"
        )
    finally:
        await connection.close()

    def memory(row: Any) -> Memory:
        kept = set(row.keys())  # a Record's own "in" looks at its values
        names = [f.name for f in fields(Memory) if f.name != "vector" and f.name in kept]
        values = {name: row[name] for name in names}
        vector = row.get("vector")
        return Memory(**values, vector=list(vector) if vector is not None else None)

    state: State = {(r["namespace"], r["coord"]): (memory(r), []) for r in live}
    for row in versions:  # a deleted memory's kept history has no live row
        entry = state.setdefault((row["namespace"], row["coord"]), (None, []))
        entry[1].append((memory(row), row["deleted_at"]))
    return state


def _live(state: State) -> State:
    return {key: entry for key, entry in state.items() if entry[0] is not None}


async def _search(settings: Settings, namespace: str, **query: Any) -> list[str]:
    async with running(settings, Metrics()) as runtime:
        found = await runtime.service.search_ranked(namespace, top_k=3, **query)
    return [hit.memory.coord for hit in found.hits]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_export_then_import_into_an_empty_instance_gives_identical_memories(
    source: Settings, target: Settings, tmp_path: Path
) -> None:
    await _fill(source)
    await _expiry_and_links(source)
    dump = tmp_path / "memories.jsonl"
    assert await commands.export(source, str(dump)) == 6

    head, *lines = _lines(dump)
    assert head["format"] == "somamemory.export" and head["version"] == FORMAT_VERSION == 2
    assert head["memories"] == 6 and head["links"] == 5
    memories, links = lines[:6], lines[6:]  # the links after every memory
    assert all(link["kind"] == "link" for link in links) and len(links) == 5
    by_key = {(m["namespace"], m["coord"]): m for m in memories}
    assert set(by_key) == {
        ("alpha", "1.0,2.0"),
        ("alpha", "3.5"),
        ("alpha", "7.0"),
        ("alpha", "8.0"),
        ("beta", "1.0,2.0"),
        ("beta", "5.0"),
    }
    assert [v["version"] for v in by_key[("alpha", "1.0,2.0")]["versions"]] == [1, 2, 3]
    assert "vector" in by_key[("alpha", "3.5")] and "vector" not in by_key[("beta", "1.0,2.0")]
    refreshed = by_key[("alpha", "7.0")]
    assert refreshed["ttl_seconds"] == 3600 and refreshed["refresh_on_read"] is True
    assert "expires_at" not in by_key[("alpha", "1.0,2.0")]
    assert "accessed_at" in by_key[("alpha", "3.5")]

    # an interrupted import (the first memory only), then the whole file: the run resumes
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(dump.read_text().splitlines()[:2]) + "\n")
    assert await commands.import_file(target, str(partial)) == (1, 1, 0)
    # the expired memory is read but not written, nor the link to it (the sweeper would take
    # both); every other link is
    assert await commands.import_file(target, str(dump)) == (6, 4, 4)

    before, after = _live(await _state(source)), await _state(target)
    expired = before.pop(("beta", "5.0"))[0]
    assert expired is not None and expired.expires_at is not None
    assert expired.expires_at < datetime.now(UTC)
    assert after.keys() == before.keys()  # the deleted memory was not exported
    assert await _links(target) == [
        link for link in await _links(source) if link[2] != "5.0"
    ]  # every column, the link's creation time included
    for key, (live, versions) in before.items():
        moved_live, moved_versions = after[key]
        assert moved_versions == versions  # version by version, timestamps included
        assert live is not None and moved_live is not None
        if live.vector is not None:  # float32 both sides; re-normalising may move the last bit
            assert moved_live.vector == pytest.approx(live.vector, rel=1e-6)
        # every field: expires_at, ttl_seconds, refresh_on_read, accessed_at as they were
        assert replace(moved_live, vector=None) == replace(live, vector=None)
    assert after[("alpha", "7.0")][0].refresh_on_read  # type: ignore[union-attr]
    assert after[("alpha", "3.5")][0].accessed_at is not None  # type: ignore[union-attr]

    # the vectors were written on import: search finds the memories in the new instance
    assert (await _search(target, "alpha", query="no sugar"))[0] == "1.0,2.0"
    assert (await _search(target, "alpha", vector=_vector(3)))[0] == "3.5"
    assert await _search(target, "beta", query="another tenant") == ["1.0,2.0"]

    # importing the same file again adds nothing
    links_after = await _links(target)
    assert await commands.import_file(target, str(dump)) == (6, 0, 0)
    assert await _state(target) == after
    assert await _links(target) == links_after

    # asked for, a deleted memory's kept history moves too, and stays deleted
    with_deleted = tmp_path / "with-deleted.jsonl"
    assert await commands.export(source, str(with_deleted), include_deleted=True) == 7
    assert await commands.import_file(target, str(with_deleted)) == (7, 0, 0)
    gone = (await _state(source))[("beta", "9.0")]
    assert gone[0] is None and gone[1][-1][1] is not None
    assert (await _state(target))[("beta", "9.0")] == gone

    # reads move a refresh_on_read expiry and the last read with no new version: a later
    # export over the earlier import catches up, and writes no version
    async with running(source, Metrics()) as runtime:
        await runtime.service.get_memory_json("alpha", "7")
        await runtime.service.get_memory_json("alpha", "1,2")
        assert await runtime.service.reads.flush(runtime.service.live.store) == 2
    later = tmp_path / "later.jsonl"
    await commands.export(source, str(later))
    _read, changed, linked = await commands.import_file(target, str(later))
    assert (changed, linked) == (0, 0)
    now_source, now_target = await _state(source), await _state(target)
    for key in [("alpha", "7.0"), ("alpha", "1.0,2.0")]:
        assert now_target[key] == now_source[key] != after[key]


async def test_export_of_one_namespace_holds_only_it(source: Settings, tmp_path: Path) -> None:
    await _fill(source)
    dump = tmp_path / "beta.jsonl"
    assert await commands.export(source, str(dump), namespace="beta") == 1
    head, only = _lines(dump)
    assert head["namespace"] == "beta" and only["namespace"] == "beta"


def _newer_file(tmp_path: Path) -> Path:
    path = tmp_path / "newer.jsonl"
    head = {"format": "somamemory.export", "version": FORMAT_VERSION + 1, "memories": 0}
    path.write_text(json.dumps(head) + "\n")
    return path


async def test_a_newer_format_version_is_refused(target: Settings, tmp_path: Path) -> None:
    with pytest.raises(TransferFileError, match="newer somamemory"):
        await commands.import_file(target, str(_newer_file(tmp_path)))
    assert await _state(target) == {}


async def test_a_version_1_file_still_imports(target: Settings, tmp_path: Path) -> None:
    """As written before expiry and links were carried: versions, a delete, nothing more."""
    first, second = "2026-01-02T03:04:05.000006Z", "2026-01-03T00:00:00Z"
    version: dict[str, Any] = {"importance": 0.5, "memory_type": "semantic"}
    lines = [
        {"format": "somamemory.export", "version": 1, "namespace": "old", "memories": 2},
        {
            "namespace": "old",
            "coord": "1,2",
            "memory_type": "semantic",
            "versions": [
                {
                    **version,
                    "version": 1,
                    "payload": {"text": "a"},
                    "created_at": first,
                    "updated_at": first,
                },
                {
                    **version,
                    "version": 2,
                    "payload": {"text": "b"},
                    "created_at": first,
                    "updated_at": second,
                },
            ],
        },
        {
            "namespace": "old",
            "coord": "3",
            "memory_type": "semantic",
            "versions": [
                {
                    **version,
                    "version": 1,
                    "payload": {"text": "c"},
                    "created_at": first,
                    "updated_at": first,
                    "deleted_at": second,
                },
            ],
        },
    ]
    path = tmp_path / "v1.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert await commands.import_file(target, str(path), index=False) == (2, 1, 0)

    state = await _state(target)
    live, versions = state[("old", "1.0,2.0")]
    assert live is not None and live.version == 2 and live.payload == {"text": "b"}
    assert live.updated_at == datetime.fromisoformat(second)
    assert (live.expires_at, live.ttl_seconds, live.refresh_on_read, live.accessed_at) == (
        None,
        None,
        False,
        None,
    )
    assert [(m.version, m.payload["text"], gone) for m, gone in versions] == [
        (1, "a", None),
        (2, "b", None),
    ]
    assert state[("old", "3.0")][0] is None  # history only: it ended in a delete
    assert state[("old", "3.0")][1][0][1] == datetime.fromisoformat(second)


def test_the_import_command_refuses_a_newer_format_with_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "SOMA_DATA_DIR": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-m", "somamemory.cli", "import", str(_newer_file(tmp_path))],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert f"format version {FORMAT_VERSION + 1}" in done.stderr
    assert not (tmp_path / "data").exists()  # refused before touching any backend


def test_the_export_command_streams_to_stdout_with_plain_progress(
    source: Settings, tmp_path: Path
) -> None:
    asyncio.run(_fill(source))
    env = {**os.environ, "POSTGRES_URL": source.postgres_url, "SOMA_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "somamemory.cli", "export", "--namespace", "alpha", "-"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    head, *memories = (json.loads(line) for line in done.stdout.splitlines())
    assert head["format"] == "somamemory.export" and len(memories) == 2
    assert "export: 2/2 memories" in done.stderr  # not a terminal: plain lines


async def test_reindex_restores_vectors_after_the_collection_was_emptied(
    source: Settings,
) -> None:
    settings = source
    await _fill(settings)
    async with running(settings, Metrics()) as runtime:
        vectors = runtime.backends.vectors
        await vectors.delete("alpha", ["1.0,2.0", "3.5"])
        await vectors.delete("beta", ["1.0,2.0"])
        await vectors.flush()
        assert await vectors.count("alpha") == 0
    # the vector list alone (hybrid would find it by its words in PostgreSQL)
    assert await _search(settings, "alpha", query="no sugar", mode="vector") == []

    # a row edited outside the service: reindex embeds what PostgreSQL holds now
    connection = await asyncpg.connect(settings.postgres_url)
    try:
        await connection.execute(
            'UPDATE memories SET payload = \'{"text": "edited by hand"}\' '
            "WHERE namespace = 'beta' AND coord = '1.0,2.0'"
        )
    finally:
        await connection.close()

    assert await commands.reindex(settings) == (3, 0)
    found = await _search(settings, "alpha", query="no sugar", mode="vector")
    assert sorted(found) == ["1.0,2.0", "3.5"]
    assert (await _search(settings, "alpha", query="no sugar"))[0] == "1.0,2.0"
    assert (await _search(settings, "alpha", vector=_vector(3)))[0] == "3.5"
    async with running(settings, Metrics()) as runtime:
        indexed = await runtime.backends.vectors.get_vector("beta", "1.0,2.0")
        (expected,) = await runtime.backends.embedder.embed(["edited by hand"])
    assert indexed == pytest.approx(expected, abs=1e-6)

"""One filter language, one meaning: Milvus and PostgreSQL select the same memories.

Hypothesis draws memories (payload fields of every type, some missing, some null, some not
filterable) and filters (every operator, nested $and/$or/$not); each filter is compiled for
Milvus (searched through the service's vector store on milvus-lite) and for PostgreSQL
(``compile_where`` over a ``memories`` table in a schema of this test's own), and the two must
admit the same coordinates. A failure prints the seed and the smallest example found.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from somamemory.filters import parse_filter
from somamemory.models import Memory
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.postgres_filter import compile_where

from ..conftest import ADMIN_URL

DIM = 8
EXAMPLES = int(os.environ.get("SOMA_FILTER_EXAMPLES", "60"))  # more for a longer hunt
FILTERS_PER_EXAMPLE = 6

_TABLE = """
CREATE TABLE memories (
    namespace text NOT NULL, coord text NOT NULL, memory_type text NOT NULL,
    payload jsonb NOT NULL, importance float8 NOT NULL, version bigint NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL,
    PRIMARY KEY (namespace, coord)
)
"""


class Backends:
    """The vector store and a PostgreSQL connection, driven from one event loop."""

    def __init__(self, tmp_path: Path) -> None:
        self.runner = asyncio.Runner()
        self.schema = f"filter_agreement_{uuid.uuid4().hex[:10]}"
        self.collection = f"filters_{uuid.uuid4().hex[:8]}"
        self.store = MilvusVectorStore.connect(
            str(tmp_path / "v.db"),
            collection=self.collection,
            dim=DIM,
            token=None,
            timeout=10,
            index_type="FLAT",  # exact search: every matching vector is found, none missed
        )
        self.db: asyncpg.Connection = self.runner.run(self._open())

    async def _open(self) -> asyncpg.Connection:
        db = await asyncpg.connect(ADMIN_URL)
        await db.execute(f'CREATE SCHEMA "{self.schema}"')
        await db.execute(f'SET search_path TO "{self.schema}"')
        await db.execute(_TABLE)
        return db

    async def _close(self) -> None:
        await self.db.execute(f'DROP SCHEMA "{self.schema}" CASCADE')
        await self.db.close()
        self.store._client.drop_collection(self.collection)
        await self.store.close()

    def close(self) -> None:
        self.runner.run(self._close())
        self.runner.close()


@pytest.fixture(scope="module")
def backends(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    opened = Backends(tmp_path_factory.mktemp("filters"))
    yield opened
    opened.close()


NAMES = ("a", "b", "c")
STRINGS = ("", "a", "ab", "b", "B", "1", "true", "é", "z", "\U0001f600", 'q"\\')
TIMES = tuple(
    datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=d, microseconds=m)
    for d, m in ((0, 0), (0, 1), (1, 500), (30, 0), (-400, 7))
)
NUMBERS = (-2, -1.5, 0, 0.1, 1, 1.0, 2.5, 3, 2**53, -(2**53))
UNFILTERABLE = (None, [1], {"x": 1}, "x" * 1025, 2**53 + 2, 1.5e300)
PAYLOAD_ONLY = ("a\tb", "x" * 1024)  # filterable, though no filter can name them
ORDERED = (*NUMBERS, *STRINGS, -3, -1, 2)
SCALARS = (*ORDERED, True, False)
ordered_scalars = st.sampled_from(ORDERED)
scalars = st.sampled_from(SCALARS)
payload_values = st.sampled_from((*SCALARS, *UNFILTERABLE, *PAYLOAD_ONLY))


@st.composite
def memories(draw: st.DrawFn, namespace: str) -> list[Memory]:
    count = draw(st.integers(1, 10))
    result = []
    for i in range(count):
        payload = draw(st.dictionaries(st.sampled_from(NAMES), payload_values, max_size=3))
        result.append(
            Memory(
                namespace,
                f"m{i}",
                draw(st.sampled_from(("episodic", "semantic"))),
                payload,
                draw(st.sampled_from((0.0, 0.25, 0.5, 1.0))),
                draw(st.integers(1, 4)),
                draw(st.sampled_from(TIMES)),
                draw(st.sampled_from(TIMES)),
            )
        )
    return result


_PLUS_2 = timezone(timedelta(hours=2))


def _spellings(moment: datetime) -> tuple[str, ...]:
    """A time as clients write it: with +00:00, with Z, at another offset, without an offset."""
    iso = moment.isoformat()
    naive = moment.replace(tzinfo=None).isoformat()
    return (iso, iso.replace("+00:00", "Z"), moment.astimezone(_PLUS_2).isoformat(), naive)


times = st.sampled_from([spelling for moment in TIMES for spelling in _spellings(moment)])


def _operand(field: str, ordered: bool = False) -> st.SearchStrategy[Any]:
    if field == "memory_type":
        return st.sampled_from(("episodic", "semantic"))
    if field in ("importance", "version"):
        return st.sampled_from((0, 0.25, 0.5, 1, 1.5, 2, 3, 4))
    if field in ("created_at", "updated_at"):
        return times
    return ordered_scalars if ordered else scalars


@st.composite
def field_clause(draw: st.DrawFn, field: str, depth: int = 0) -> Any:
    """What one field must satisfy: shorthand, or an operator object."""
    operand = _operand(field)
    ordered = _operand(field, ordered=True)
    kinds = ["value", "list", "$eq", "$ne", "$in", "$nin"]
    if field != "memory_type":
        kinds += ["$gt", "$gte", "$lt", "$lte"]
    if field in NAMES:
        kinds.append("$exists")
    if depth < 2:
        kinds += ["$not", "multi"]
    kind = draw(st.sampled_from(kinds))
    if kind == "value":
        return draw(operand)
    if kind == "list":
        return draw(st.lists(operand, min_size=1, max_size=3))
    if kind in ("$in", "$nin"):
        return {kind: draw(st.lists(operand, min_size=1, max_size=3))}
    if kind == "$exists":
        return {"$exists": draw(st.booleans())}
    if kind == "$not":
        return {"$not": draw(field_clause(field, depth + 1))}
    if kind == "multi":
        low, high = draw(st.sampled_from((("$gt", "$lte"), ("$gte", "$lt"), ("$gte", "$ne"))))
        if field == "memory_type":
            low, high = "$eq", "$ne"
        return {low: draw(ordered), high: draw(ordered)}
    return {kind: draw(ordered if kind in ("$gt", "$gte", "$lt", "$lte") else operand)}


FIELDS = (*NAMES, "memory_type", "importance", "version", "created_at", "updated_at")


@st.composite
def filter_object(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    kinds = ["fields", "fields"] + (["$and", "$or", "$not"] if depth < 3 else [])
    result: dict[str, Any] = {}
    for kind in draw(st.lists(st.sampled_from(kinds), min_size=1, max_size=2)):
        if kind == "fields":
            for field in draw(st.lists(st.sampled_from(FIELDS), min_size=1, max_size=2)):
                result[field] = draw(field_clause(field))
        elif kind == "$not":
            result["$not"] = draw(filter_object(depth + 1))
        else:
            result[kind] = draw(st.lists(filter_object(depth + 1), min_size=1, max_size=2))
    return result


def _vector(i: int) -> list[float]:
    return [1.0] + [float((i * 7 + j * 3) % 5 - 2) for j in range(DIM - 1)]


async def _load(backends: Backends, rows: list[Memory]) -> None:
    await backends.store.upsert([(m, _vector(i)) for i, m in enumerate(rows)])
    await backends.db.executemany(
        "INSERT INTO memories VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)",
        [
            (
                m.namespace,
                m.coord,
                m.memory_type,
                json.dumps(m.payload),
                m.importance,
                m.version,
                m.created_at,
                m.updated_at,
            )
            for m in rows
        ],
    )


async def _unload(backends: Backends, rows: list[Memory]) -> None:
    await backends.store.delete(rows[0].namespace, [m.coord for m in rows])
    await backends.db.execute("DELETE FROM memories WHERE namespace = $1", rows[0].namespace)


async def _selected(backends: Backends, where: Any, count: int) -> tuple[set[str], set[str]]:
    hits = await backends.store.search(_vector(0), top_k=count, where=where)
    condition, params = compile_where(where, 1)
    rows = await backends.db.fetch(f"SELECT coord FROM memories WHERE {condition}", *params)
    return {coord for coord, _ in hits}, {row["coord"] for row in rows}


# Hypothesis warns when the global `random` state changes during a draw; here only other threads
# of the process (drivers' retry jitter) change it, never these strategies.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    # no shrinking (it would replay hundreds of searches): a failure shows the filter and rows
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_milvus_and_postgresql_select_the_same_memories(
    backends: Backends, data: st.DataObject
) -> None:
    namespace = f"p-{uuid.uuid4().hex[:12]}"
    rows = data.draw(memories(namespace), label="memories")
    backends.runner.run(_load(backends, rows))
    for _ in range(FILTERS_PER_EXAMPLE):
        filters = data.draw(filter_object(), label="filters")
        where = parse_filter(namespace, filters)
        if where is None:
            continue
        in_milvus, in_postgres = backends.runner.run(_selected(backends, where, len(rows)))
        assert in_milvus == in_postgres, (filters, rows)
    backends.runner.run(_unload(backends, rows))

"""PostgreSQL row-level security (``SOMA_POSTGRES_ROW_SECURITY``) on the machine's PostgreSQL.

The service runs whole on a role the policies bind; a statement that lost its namespace clause
still answers only the caller's namespace and cannot write another's; a role the policies cannot
bind is refused at startup, saying what to change.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from fastapi.testclient import TestClient

from somamemory.app import create_app
from somamemory.errors import StartupError
from somamemory.filters import SearchFilter
from somamemory.models import NewMemory
from somamemory.schema import upgrade_to_head
from somamemory.settings import Settings
from somamemory.stores import postgres, postgres_graph, postgres_history, tables
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_graph import PostgresGraph
from somamemory.stores.postgres_keyword import keyword_search
from somamemory.stores.postgres_pool import create_pool
from somamemory.stores.postgres_row_security import CONFINED_TABLES, require_row_security

from ..conftest import DIM, TOKEN, _admin, create_database, drop_database


def _as(url: str, role: str) -> str:
    """The same URL, logging in as ``role`` (the machine's PostgreSQL trusts local logins)."""
    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}@{host}"))


@pytest.fixture(scope="module")
def role() -> Iterator[str]:
    """A login role that is neither a superuser nor BYPASSRLS, as a careful deployment uses."""
    name = f"soma_rls_{uuid.uuid4().hex[:10]}"
    asyncio.run(_admin(f'CREATE ROLE "{name}" LOGIN NOSUPERUSER NOBYPASSRLS'))
    yield name
    asyncio.run(_admin(f'DROP ROLE IF EXISTS "{name}"'))


@pytest.fixture(scope="module")
def owned_url(role: str) -> Iterator[str]:
    """A database the role owns and migrated itself (the service's usual shape)."""
    url = create_database()
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f'ALTER DATABASE "{name}" OWNER TO "{role}"'))
    upgrade_to_head(_as(url, role))
    yield _as(url, role)
    drop_database(url)


async def _on(url: str, *statements: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = []
        for statement in statements:
            rows = await connection.fetch(statement)
        return rows
    finally:
        await connection.close()


def _row_security(url: str) -> dict[str, tuple[bool, bool]]:
    rows = asyncio.run(
        _on(
            url,
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
            f"WHERE relname IN {tuple(CONFINED_TABLES)!r}",
        )
    )
    return {row["relname"]: (row["relrowsecurity"], row["relforcerowsecurity"]) for row in rows}


def test_the_service_runs_confined_and_each_namespace_sees_only_its_own(
    owned_url: str, make_settings: Callable[..., Settings]
) -> None:
    """Every route that reads or writes one namespace works under the policies, with group
    commit mixing namespaces in one transaction (unconfined) and the reconciler and sweeps
    running beside it."""
    # hash embeddings: nothing here judges meaning, and keyword search is exercised
    settings = make_settings(
        postgres_url=owned_url,
        postgres_row_security=True,
        enable_batch_upsert=True,
        force_hash_embeddings=True,
    )
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    heads = {ns: {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": ns} for ns in (a, b)}
    with TestClient(create_app(settings)) as client:
        assert _row_security(owned_url) == dict.fromkeys(CONFINED_TABLES, (True, True))
        for ns in (a, b):
            for coord in ("1", "2"):
                body = {"coord": coord, "payload": {"text": f"harbour lantern {ns}"}}
                assert client.post("/memories", json=body, headers=heads[ns]).status_code == 200
            batch = {"items": [{"coord": "3", "payload": {"text": f"third {ns}"}}]}
            assert client.post("/memories/batch", json=batch, headers=heads[ns]).status_code == 200
            link = {"from_coord": "1", "to_coord": "2"}
            assert client.post("/graph/link", json=link, headers=heads[ns]).status_code == 200

        for ns in (a, b):
            got = client.get("/memories/1", headers=heads[ns])
            assert got.json()["memory"]["payload"] == {"text": f"harbour lantern {ns}"}
            versions = client.get("/memories/1/versions", headers=heads[ns]).json()["versions"]
            assert [v["payload"]["text"] for v in versions] == [f"harbour lantern {ns}"]
            found = client.post(
                "/memories/search",
                json={"query": "harbour lantern", "top_k": 10, "mode": "keyword"},
                headers=heads[ns],
            ).json()["memories"]
            assert {m["payload"]["text"] for m in found} == {f"harbour lantern {ns}"}
            neighbors = client.get(
                "/graph/neighbors", params={"coord": "1"}, headers=heads[ns]
            ).json()["neighbors"]
            assert [n["coord"] for n in neighbors] == ["2.0"]
            assert client.get("/stats", headers=heads[ns]).json()["total_memories"] == 3
            exported = client.get("/export", headers=heads[ns]).content.splitlines()[1:]
            records = [json.loads(line) for line in exported]
            assert {r.get("namespace") for r in records} == {ns}

        assert client.delete("/memories/1", headers=heads[a]).json()["deleted"] is True
        assert client.get("/memories/1", headers=heads[a]).status_code == 404
        assert client.get("/memories/1", headers=heads[b]).status_code == 200


# a namespace clause of a statement: what the policies stand behind if one goes missing
_CLAUSE = re.compile(r"\b(\w+\.)?namespace = \$1\b")


def _forget_namespace_clauses(monkeypatch: pytest.MonkeyPatch) -> int:
    """Remove every ``namespace = $1`` from the stores' statements; how many were changed."""
    changed = 0
    for module in (postgres, postgres_graph, postgres_history):
        for name, value in list(vars(module).items()):
            if name.startswith("_") and isinstance(value, str) and _CLAUSE.search(value):
                monkeypatch.setattr(module, name, _CLAUSE.sub("$1::text IS NOT NULL", value))
                changed += 1
    return changed


def _memory(namespace: str, coord: str, text: str) -> NewMemory:
    return NewMemory(namespace, coord, "episodic", {"text": text}, 0.5, vector=[0.0] * DIM)


async def _answers_without_clauses(url: str, monkeypatch: pytest.MonkeyPatch, *, confined: bool):
    """What namespace b's calls answer once every statement forgot its namespace clause, with a
    namespace a beside it holding the same coordinates (and one more)."""
    pool = await create_pool(url, min_size=1, max_size=2, timeout=5)
    try:
        async with pool.acquire() as held:
            await require_row_security(held)
        store = PostgresStore(pool, row_security=confined)
        graph = PostgresGraph(pool, row_security=confined)
        a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
        await store.put_many([_memory(a, c, f"{c} of a") for c in ("1", "2", "3")])
        await store.put_many([_memory(b, c, f"{c} of b") for c in ("1", "2")])
        await graph.link(a, "1", "2", "related", 1.0, {})
        assert _forget_namespace_clauses(monkeypatch) >= 10
        one = await store.get(b, "1")
        many = await store.get_many(b, ["1", "2", "3"])
        versions = await store.versions(b, "1")
        counts = await store.counts(b)
        then = await store.as_of(b, "1", datetime.now(UTC))
        neighbors = await graph.neighbors(
            b, "1", k_hop=1, limit=10, link_type=None, direction="out"
        )
        deleted = await store.delete(b, "3")
        async with store.confinement.connection(b) as connection:
            updated = await connection.execute(
                "UPDATE memories SET payload = '{\"text\": \"updated\"}' WHERE coord = '1'"
            )
        refused = ""
        try:
            async with store.confinement.connection(b) as connection:
                await connection.execute(
                    "INSERT INTO memories (namespace, coord, memory_type, payload, importance, "
                    "version, created_at, updated_at) "
                    "VALUES ($1, '9', 'episodic', '{}', 0.5, 1, now(), now())",
                    a,
                )
        except asyncpg.InsufficientPrivilegeError as exc:
            refused = str(exc)
        monkeypatch.undo()
        return {
            "get": one.payload if one else None,
            "get_many": sorted(m.payload["text"] for m in many.values()),
            "versions": [v.payload["text"] for v in versions],
            "count": counts.episodic,
            "as_of": then.payload if then else None,
            "neighbors": [n.coord for n in neighbors],
            "deleted": deleted,
            "a's 3 after": (await store.get(a, "3")) is not None,
            "updated": updated,
            "refused": refused,
            "a's 1 after": ((await store.get(a, "1")) or _memory(a, "1", "")).payload,
        }
    finally:
        await pool.close()


def test_statements_that_lost_their_namespace_clause_still_answer_one_namespace(
    owned_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads, a walk, a delete and writes of namespace b, with every statement's namespace
    clause gone, touch b's rows only; without the policies the same calls answer a's rows."""
    seen = asyncio.run(_answers_without_clauses(owned_url, monkeypatch, confined=True))
    assert seen["get"] == {"text": "1 of b"}
    assert seen["get_many"] == ["1 of b", "2 of b"]
    assert seen["versions"] == ["1 of b"]
    assert seen["count"] == 2
    assert seen["as_of"] == {"text": "1 of b"}
    assert seen["neighbors"] == []  # a's link is not b's
    assert (seen["deleted"], seen["a's 3 after"]) == (0, True)
    assert seen["updated"] == "UPDATE 1"  # b's row alone
    assert "row-level security" in str(seen["refused"])
    assert seen["a's 1 after"] == {"text": "1 of a"}

    unconfined = asyncio.run(_answers_without_clauses(owned_url, monkeypatch, confined=False))
    assert unconfined["get_many"] != ["1 of b", "2 of b"]  # the defect shows without them
    assert unconfined["count"] != 2 and unconfined["a's 3 after"] is False
    assert unconfined["updated"] != "UPDATE 1" and unconfined["refused"] == ""


def test_a_superuser_is_refused_at_startup(make_settings: Callable[..., Settings]) -> None:
    """The tests' own role is a superuser, which row security never binds."""
    settings = make_settings(postgres_row_security=True, force_hash_embeddings=True)
    refused = pytest.raises(StartupError, match="superuser, which row-level security never binds")
    with refused, TestClient(create_app(settings)):
        pass


def test_a_role_that_does_not_own_the_tables_is_told_what_to_ask_their_owner(role: str) -> None:
    url = create_database()
    try:
        upgrade_to_head(url)  # owned by the machine's superuser
        asyncio.run(
            _on(
                url,
                f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"',
            )
        )

        async def check() -> None:
            connection = await asyncpg.connect(_as(url, role))
            try:
                await require_row_security(connection)
            finally:
                await connection.close()

        with pytest.raises(StartupError, match="ALTER TABLE memories ENABLE ROW LEVEL SECURITY"):
            asyncio.run(check())
    finally:
        drop_database(url)


def test_the_policies_change_nothing_until_row_security_is_enabled(database_url: str) -> None:
    """Migrated, the tables carry the policies but no row security: a service without the
    setting runs as before (keyword search keeps its full-text index, which a policy disables)."""
    assert set(_row_security(database_url).values()) == {(False, False)}
    rows = asyncio.run(
        _on(
            database_url,
            "SELECT c.relname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid "
            "WHERE p.polname = 'namespace_confinement'",
        )
    )
    assert {row["relname"] for row in rows} == set(CONFINED_TABLES)


def test_every_table_of_a_namespace_s_rows_is_confined() -> None:
    """A table added with a namespace column must join CONFINED_TABLES (and get the policy in
    its migration), or be named here with the reason it is not confined."""
    not_confined = {"namespace_policies": "the admin's per-namespace settings, not memories"}
    with_namespace = {
        table.name for table in tables.metadata.tables.values() if "namespace" in table.columns
    }
    assert with_namespace - set(not_confined) == set(CONFINED_TABLES)


_TEXTS = [
    "Deployment of v2.3.1 failed with error E4711 on the staging cluster",
    "the deployments went fine; alice@example.com approved TICKET-8812",
    "Error E4711 means the disk quota was exceeded",
    "Lunch with Bob about the quarterly roadmap",
    "roadmap review: deploy the search service next quarter",
    "nothing relevant here at all",
]
_QUERIES = [
    "what does error E4711 mean?",
    "deploy",
    "the",
    "alice@example.com TICKET-8812 roadmap",
    "quarter deployment review bob",
    "no such words xyzzy",
    "o'brien \\ back'slash",
]


async def _both_ways(url: str) -> list[tuple[list[tuple], list[tuple]]]:
    pool = await create_pool(url, min_size=1, max_size=2, timeout=5)
    try:
        store = PostgresStore(pool)
        namespace = f"kw-{uuid.uuid4().hex[:8]}"
        await store.put_many(
            [
                NewMemory(namespace, f"{i}.0", ("episodic", "semantic")[i % 2], {"t": t}, 0.5)
                for i, t in enumerate(_TEXTS)
            ]
        )
        compared = []
        for where in (SearchFilter(namespace), SearchFilter(namespace, ("semantic",))):
            for query in _QUERIES:
                async with pool.acquire() as connection:
                    ways = [
                        [
                            (hit.coord, round(hit.score, 9), round(hit.coverage, 9), hit.code)
                            for hit in await keyword_search(
                                connection, query, where, 10, indexed=indexed
                            )
                        ]
                        for indexed in (True, False)
                    ]
                compared.append((ways[0], ways[1]))
        return compared
    finally:
        await pool.close()


def test_keyword_recall_by_reading_documents_finds_what_the_index_finds(database_url: str) -> None:
    """The form keyword search takes under the policies gives the same hits, scores, coverage
    and code flags as the indexed form, filters and awkward queries included."""
    compared = asyncio.run(_both_ways(database_url))
    assert any(indexed for indexed, _ in compared)  # the queries do find memories
    for indexed, scanned in compared:
        assert scanned == indexed

"""What ``SOMA_POSTGRES_ROW_SECURITY`` costs a namespace's PostgreSQL calls.

Creates a login role that is neither a superuser nor BYPASSRLS, a database it owns, migrates it,
loads ``--memories`` memories into each of ``--namespaces`` namespaces (payload text for keyword
search), then times the store's calls without row security (the tables' disabled, calls
unconfined: the default) and with it (enabled as the service's startup does, calls confined),
alternating ``--rounds`` times in one run: a GET (cache miss), the fetch of ten hits that a
search answers with, a history page and a keyword search. Prints p50 per call and the ratio, and
the p50 of a confined keyword search written for the full-text index, which the policy disables.
The database and role are dropped afterwards.

    python bench/row_security.py --admin-url postgresql://postgres@127.0.0.1:5432/postgres
        [--memories 20000] [--namespaces 5] [--calls 400] [--keyword-calls 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from somamemory.filters import SearchFilter
from somamemory.models import NewMemory
from somamemory.schema import upgrade_to_head
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_keyword import keyword_search
from somamemory.stores.postgres_pool import create_pool
from somamemory.stores.postgres_row_security import CONFINED_TABLES, require_row_security

WORDS = [
    "harbour",
    "lantern",
    "river",
    "stone",
    "orchard",
    "meadow",
    "copper",
    "violet",
    "thunder",
    "glass",
]


def _url(admin_url: str, *, user: str | None = None, database: str | None = None) -> str:
    parts = urlsplit(admin_url)
    netloc = parts.netloc if user is None else f"{user}@{parts.netloc.rsplit('@', 1)[-1]}"
    path = parts.path if database is None else f"/{database}"
    return urlunsplit(parts._replace(netloc=netloc, path=path))


async def _admin(url: str, *statements: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


async def _load(store: PostgresStore, namespaces: list[str], memories: int) -> None:
    rng = random.Random(7)
    for namespace in namespaces:
        for start in range(0, memories, 1000):
            batch = [
                NewMemory(
                    namespace,
                    f"{i}.0",
                    "episodic",
                    {"text": " ".join(rng.choices(WORDS, k=6)) + f" item{i}"},
                    0.5,
                )
                for i in range(start, min(start + 1000, memories))
            ]
            await store.put_many(batch)


async def _p50_ms(call: Callable[[int], Awaitable[object]], calls: int) -> float:
    times = []
    for i in range(calls):
        began = time.perf_counter()
        await call(i)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


def _keyword_query(i: int, n: int) -> str:
    return f"{WORDS[i % len(WORDS)]} item{(i * 7919) % n}"


def _indexed_keyword(store: PostgresStore, n: int) -> Callable[[int], Awaitable[object]]:
    """A confined keyword search written for the index, which the policy keeps out of reach
    (what the store would run if it did not switch to reading each document once)."""

    async def call(i: int) -> object:
        async with store.confinement.connection("ns1") as connection:
            return await keyword_search(
                connection, _keyword_query(i, n), SearchFilter("ns1"), 10, indexed=True
            )

    return call


async def run(args: argparse.Namespace) -> None:
    role, database = f"soma_bench_{uuid.uuid4().hex[:8]}", f"soma_bench_{uuid.uuid4().hex[:8]}"
    await _admin(
        args.admin_url,
        f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS',
        f'CREATE DATABASE "{database}" OWNER "{role}"',
    )
    url = _url(args.admin_url, user=role, database=database)
    try:
        await asyncio.to_thread(upgrade_to_head, url)
        pool = await create_pool(url, min_size=1, max_size=4, timeout=10)
        try:
            namespaces = [f"ns{i}" for i in range(args.namespaces)]
            await _load(PostgresStore(pool), namespaces, args.memories)
            async with pool.acquire() as held:
                await held.execute("ANALYZE")
            stores = {"off": PostgresStore(pool), "on": PostgresStore(pool, row_security=True)}
            n = args.memories
            calls: dict[str, Callable[[PostgresStore], Callable[[int], Awaitable[object]]]] = {
                "get": lambda s: lambda i: s.get("ns1", f"{(i * 7919) % n}.0"),
                "get_many (10 hits)": lambda s: (
                    lambda i: s.get_many(
                        "ns1", [f"{(i * 7919 + k * 101) % n}.0" for k in range(10)]
                    )
                ),
                "versions": lambda s: lambda i: s.versions("ns1", f"{(i * 7919) % n}.0"),
                "keyword search": lambda s: (
                    lambda i: s.keyword_search(
                        _keyword_query(i, n),
                        where=SearchFilter("ns1"),
                        limit=10,
                    )
                ),
            }
            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for mode in ("off", "on"):
                    async with pool.acquire() as held:
                        if mode == "on":
                            await require_row_security(held)  # as the service's startup does
                        else:
                            for table in CONFINED_TABLES:
                                await held.execute(
                                    f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY, "
                                    "DISABLE ROW LEVEL SECURITY"
                                )
                    for name, make in calls.items():
                        count = args.calls if name != "keyword search" else args.keyword_calls
                        p50 = await _p50_ms(make(stores[mode]), count)
                        results.setdefault((name, mode), []).append(p50)
                    if mode == "on":  # the index's form of keyword search, under the policy
                        p50 = await _p50_ms(_indexed_keyword(stores["on"], n), args.keyword_calls)
                        results.setdefault(("indexed keyword search", mode), []).append(p50)
        finally:
            await pool.close()
    finally:
        await _admin(
            args.admin_url,
            f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)',
            f'DROP ROLE IF EXISTS "{role}"',
        )
    print(
        f"{args.namespaces} namespaces x {args.memories} memories, "
        f"{args.calls} calls x {args.rounds} rounds"
    )
    print("| call | without p50 ms | with p50 ms | with / without |")
    print("| --- | --- | --- | --- |")
    for name in calls:
        off = statistics.median(results[(name, "off")])
        on = statistics.median(results[(name, "on")])
        print(f"| {name} | {off:.3f} | {on:.3f} | {on / off:.2f} |")
    indexed = statistics.median(results[("indexed keyword search", "on")])
    print(f"with row security, keyword search in the index's form: {indexed:.3f} ms p50")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--memories", type=int, default=20000)
    parser.add_argument("--namespaces", type=int, default=5)
    parser.add_argument("--calls", type=int, default=400)
    parser.add_argument("--keyword-calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()

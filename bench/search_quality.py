"""Search quality and latency: Milvus recall@10 against exact brute-force cosine, and p50/p99.

The labelled set is generated here (no download): 384-dim vectors drawn around 2,000 random
centres (clustered, as embeddings are), queries that are perturbed copies of stored vectors, and
for each query the exact top-10 by brute-force cosine (NumPy). The same vectors go into Milvus
through the service's own vector store; recall@10 = |ANN top-10 ∩ exact top-10| / 10.

Then the service itself is started on those memories (PostgreSQL rows written in bulk with COPY)
and ``POST /memories/search`` is timed over HTTP with a ``vector`` body.

The in-process timings start once milvus-lite has built its segment indexes (it builds them in
a background thread after a flush, and answers by brute force until then) and after a warm-up.

    python bench/search_quality.py [--sizes 10000 100000] [--queries 300] [--index HNSW]
                                   [--ef 512] [--repeat 3] [--warmup 20] [--no-http]
                                   [--under-writes 200] [--right-after-load]

``--under-writes RATE`` times the HTTP searches again while a separate process writes RATE new
memories a second (``POST /memories`` with vectors of the same distribution) to the service with
group commit on (``SOMA_ENABLE_BATCH_UPSERT=1``), into the searched namespace (or
``--writes-namespace``: another tenant's writes). Their recall@10 is
against the exact top-10 of the preloaded memories only: a new memory in the answer counts as a
miss, so it is a lower bound; also printed: the answer's m preloaded memories against the exact
top-m of the preloaded set (what an exact search over everything present would give for them).
``--right-after-load`` starts a service on empty stores, loads the memories through
``POST /memories/batch``, and times searches from the moment the load returned until every
segment has its index and no merge is under way (recall against all of them), and for 30 s at
least (those first 30 s are also printed on their own, whatever the segments did).

``--milvus-python VENV/bin/python`` puts the vectors on a Milvus 2.3.5 standalone server started
from that venv instead of milvus-lite, for every measurement above (one collection per size, a
fresh one for ``--right-after-load``). Milvus binds 0.0.0.0, so this runs only in a loopback-only
network namespace: scripts/bench-search-server.sh --quality enters one and reaches the machine's
PostgreSQL through its Unix socket (``--admin-url``).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, get_args

import asyncpg
import httpx
import numpy as np
from harness import ADMIN_URL, TOKEN, drop_database, migrated_database, percentiles, serving
from search_live import lite_collection_dir, right_after_load, segment_rows, under_writes

from somamemory.filters import parse_filter
from somamemory.models import Consistency, Memory
from somamemory.stores.collection_identity import in_family
from somamemory.stores.milvus import MilvusVectorStore

DIM = 384
NAMESPACE = "bench"
SERVICE_ENV: dict[str, str] = {}  # added to every served service's environment (--lite-in-thread)
SERVER: dict[str, str] = {}  # "uri" of the Milvus server (--milvus-python); empty: milvus-lite
POSTGRES: dict[str, str] = {"admin": ADMIN_URL}  # --admin-url


def dataset(size: int, queries: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2000, DIM)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), size)] + 0.6 * rng.normal(size=(size, DIM))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    picks = vectors[rng.integers(0, size, queries)] + 0.3 * rng.normal(size=(queries, DIM))
    picks = (picks / np.linalg.norm(picks, axis=1, keepdims=True)).astype(np.float32)
    return vectors, picks


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    scores = queries @ vectors.T
    return np.argsort(-scores, axis=1)[:, :k]


async def fill_milvus(
    store: MilvusVectorStore, vectors: np.ndarray, *, flush_each: bool = False
) -> float:
    """Upsert ``vectors`` 2,000 at a time and flush once at the end (lite then writes a segment
    per 128 MiB of memtable: 78k + 22k rows at 100k), or after each upsert (``flush_each``: lite's
    merges then decide the segments, as they do under the service's flush every second)."""
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, len(vectors), 2000):
        batch = [
            (Memory(NAMESPACE, f"{i}.0", "episodic", {"i": i}, 0.0, 1, now, now), vectors[i])
            for i in range(start, min(start + 2000, len(vectors)))
        ]
        await store.upsert(batch)
        if flush_each:
            await store.flush()
    await store.flush()
    return time.perf_counter() - started


def wait_for_lite_indexes(store: MilvusVectorStore) -> float:
    """Block until milvus-lite's background index builds are done (bench-only internals)."""
    from milvus_lite.server_manager import server_manager_instance

    started = time.perf_counter()
    for _server, db, _port in list(server_manager_instance._servers.values()):
        if db.has_collection(store._collection):
            db.get_collection(store._collection)._wait_for_bg()
    return time.perf_counter() - started


@functools.cache
def server_client(uri: str) -> Any:
    """One pymilvus client per server for the bench's own look-ups."""
    from pymilvus import MilvusClient

    return MilvusClient(uri=uri)


def server_pending_rows(uri: str, collection: str) -> int:
    """Rows of a Milvus server's sealed segments that searches do not read through the index
    yet (-1: not known yet): not indexed, or indexed but not yet loaded in place of the rows'
    growing segments, which the server searches through its interim index (an IVF at a low
    nprobe) meanwhile. Rows still in growing segments are not counted. ``collection`` is the
    configured name: the service may have made an identity's collection of that family."""
    client = server_client(uri)
    names = [name for name in client.list_collections() if in_family(collection, name)]
    if len(names) != 1:
        return -1
    (index,) = client.list_indexes(names[0])
    state = client.describe_index(names[0], index)
    loaded = sum(s.num_rows for s in client.list_loaded_segments(names[0]) if s.index_name)
    unloaded = max(int(state.get("indexed_rows", 0)) - loaded, 0)
    return int(state.get("pending_index_rows", 0)) + unloaded + (state.get("state") == "InProgress")


def wait_for_server_indexes(uri: str, collection: str, limit: float = 1800) -> float:
    """Seal what was written (a server flush), then block until every sealed row is indexed."""
    started = time.perf_counter()
    server_client(uri).flush(collection)
    while server_pending_rows(uri, collection) != 0:
        if time.perf_counter() - started > limit:
            raise SystemExit(f"the server's index build took more than {limit:.0f} s")
        time.sleep(0.5)
    return time.perf_counter() - started


async def in_process(
    store: MilvusVectorStore, queries: np.ndarray, warmup: int = 0
) -> tuple[list[list[int]], list[float]]:
    where = parse_filter(NAMESPACE)
    assert where is not None
    for query in queries[:warmup]:
        await store.search(query.tolist(), top_k=10, where=where)
    found, times = [], []
    for query in queries:
        started = time.perf_counter()
        hits = await store.search(query.tolist(), top_k=10, where=where)
        times.append(time.perf_counter() - started)
        found.append([int(float(coord)) for coord, _ in hits])
    return found, times


async def fill_postgres(url: str, size: int) -> None:
    connection = await asyncpg.connect(url)
    now = datetime.now(UTC)
    rows = [
        (NAMESPACE, f"{i}.0", "episodic", json.dumps({"i": i}), 0.0, 1, now, now)
        for i in range(size)
    ]
    await connection.copy_records_to_table(
        "memories",
        records=rows,
        columns=[
            "namespace",
            "coord",
            "memory_type",
            "payload",
            "importance",
            "version",
            "created_at",
            "updated_at",
        ],
    )
    await connection.close()


def over_http(
    db_url: str,
    data_dir: Path,
    collection: str,
    index: str,
    ef: int,
    queries: np.ndarray,
    warmup: int,
) -> list[float]:
    env = {
        "POSTGRES_URL": db_url,
        "SOMA_MILVUS_COLLECTION": collection,
        "SOMA_MILVUS_INDEX": index,
        "SOMA_MILVUS_SEARCH_EF": str(ef),
        **SERVICE_ENV,
    }
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": NAMESPACE}
    times = []
    with (
        serving(data_dir, env) as url,
        httpx.Client(base_url=url, headers=headers, timeout=30) as client,
    ):
        for query in queries[:warmup]:
            client.post("/memories/search", json={"vector": query.tolist(), "top_k": 10})
        for query in queries:
            started = time.perf_counter()
            response = client.post("/memories/search", json={"vector": query.tolist(), "top_k": 10})
            times.append(time.perf_counter() - started)
            response.raise_for_status()
            assert len(response.json()["memories"]) == 10
    return times


async def _milvus_phase(
    data_dir: Path,
    collection: str,
    index: str,
    ef: int,
    vectors: np.ndarray,
    queries: np.ndarray,
    warmup: int,
    repeat: int,
    flush_each: bool,
) -> tuple[float, float, list[list[int]], list[list[float]]]:
    uri = SERVER.get("uri") or str(data_dir / "milvus.db")
    store = MilvusVectorStore.connect(
        uri,
        collection=collection,
        dim=DIM,
        token=None,
        timeout=10,
        index_type=index,
        search_ef=ef,
    )
    fill_seconds = await fill_milvus(store, vectors, flush_each=flush_each)
    if store.is_lite:
        index_seconds = wait_for_lite_indexes(store)
    else:
        index_seconds = await asyncio.to_thread(wait_for_server_indexes, uri, collection)
    runs = []
    for _ in range(repeat):
        found, times = await in_process(store, queries, warmup)
        runs.append(times)
    await store.close()
    return fill_seconds, index_seconds, found, runs


def milvus_phase(
    server: dict[str, str], *args: object
) -> tuple[float, float, list[list[int]], list[list[float]]]:
    """In a child process: milvus-lite holds its data directory until its process exits."""
    SERVER.update(server)
    return asyncio.run(_milvus_phase(*args))  # type: ignore[arg-type]


def recall_at_10(found: list[list[int]], truth: np.ndarray) -> float:
    pairs = zip(found, truth, strict=True)
    return float(np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in pairs]))


async def busy_runs(
    args: argparse.Namespace,
    size: int,
    vectors: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    db_url: str,
    data_dir: Path,
    tmp: Path,
) -> None:
    """The ``--under-writes`` and ``--right-after-load`` measurements, printed as they end."""
    collection = f"bench_{size}"
    env = {
        "POSTGRES_URL": db_url,
        "SOMA_MILVUS_COLLECTION": collection,
        "SOMA_MILVUS_INDEX": args.index,
        "SOMA_MILVUS_SEARCH_EF": str(args.ef),
        **SERVICE_ENV,
    }
    if args.under_writes:
        # group commit on: 200 single writes a second is batching off's whole capacity here
        batching = {**env, "SOMA_ENABLE_BATCH_UPSERT": "1"}
        got = await asyncio.to_thread(
            under_writes,
            batching,
            data_dir,
            queries,
            args.warmup,
            args.repeat,
            args.under_writes,
            size,
            writes_namespace=args.writes_namespace,
        )
        p50, p99 = percentiles(got["times"])
        truths = np.tile(truth, (args.repeat, 1))
        recall = recall_at_10(got["found"], truths)
        shares = []  # the answer's preloaded memories against as many exact preloaded ones
        for hits, exact in zip(got["found"], truths, strict=True):
            old = [h for h in hits if h < size]
            shares.append(len(set(old) & set(exact[: len(old)].tolist())) / max(len(old), 1))
        print(
            f"{size:,} under writes: asked {args.under_writes:g}/s, written "
            f"{got['write_rate']:.1f}/s ({got['writes_ok']} ok, {got['writes_failed']} failed); "
            f"{len(got['times'])} searches in {got['search_seconds']:.1f}s: HTTP p50/p99 "
            f"{p50:.1f}/{p99:.1f} ms, recall@10 vs the preloaded set {recall:.3f} (new memories "
            f"count as misses), of the preloaded hits {float(np.mean(shares)):.3f}",
            flush=True,
        )
    if args.right_after_load:
        empty_url = await migrated_database(POSTGRES["admin"])
        fresh = tmp / f"fresh-{size}"
        fresh.mkdir()
        if SERVER:  # the server keeps the first collection: load into a new one
            fresh_collection = f"{collection}_fresh"
            uri = SERVER["uri"]
            pending = lambda: server_pending_rows(uri, fresh_collection)  # noqa: E731
        else:
            fresh_collection = collection
            pending = None
        try:
            got = await asyncio.to_thread(
                right_after_load,
                {**env, "POSTGRES_URL": empty_url, "SOMA_MILVUS_COLLECTION": fresh_collection},
                fresh,
                fresh_collection,
                vectors,
                queries,
                pending=pending,
            )
        finally:
            await drop_database(empty_url, POSTGRES["admin"])
        during = got["times"]
        found = [hits for _, hits in got["found"]]
        recall = recall_at_10(found, truth[[q for q, _ in got["found"]]]) if found else float("nan")
        p50, p99 = percentiles(during) if during else (float("nan"), float("nan"))
        after = percentiles(got["after_times"]) if got["after_times"] else (float("nan"),) * 2
        first = percentiles(got["first_times"])
        print(
            f"{size:,} right after load: bulk load {got['load_seconds']:.1f}s, index build window "
            f"{got['window_seconds']:.1f}s: {len(during)} searches, HTTP p50/p99 "
            f"{p50:.1f}/{p99:.1f} ms, max {max(during, default=0) * 1000:.0f} ms, recall@10 "
            f"{recall:.3f}; after the build p50/p99 {after[0]:.1f}/{after[1]:.1f} ms; the first"
            f" 30 s after the load, {len(got['first_times'])} searches: p50/p99"
            f" {first[0]:.1f}/{first[1]:.1f} ms"
            + (f"; segments then {got['segments']} rows" if got["segments"] else ""),
            flush=True,
        )


async def run(
    size: int,
    queries_n: int,
    index: str,
    ef: int,
    warmup: int,
    repeat: int,
    http: bool,
    tmp: Path,
    args: argparse.Namespace | None = None,
) -> dict[str, float]:
    vectors, queries = dataset(size, queries_n)
    truth = exact_top(vectors, queries)
    data_dir = tmp / f"data-{size}"
    data_dir.mkdir()
    collection = f"bench_{size}"
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        fill_seconds, index_seconds, found, runs = await asyncio.get_running_loop().run_in_executor(
            pool,
            milvus_phase,
            SERVER,
            data_dir,
            collection,
            index,
            ef,
            vectors,
            queries,
            warmup,
            repeat,
            args is not None and args.preload_flush == "each",
        )
    recall = float(
        np.mean([len(set(f) & set(t.tolist())) / 10 for f, t in zip(found, truth, strict=True)])
    )
    per_run = [percentiles(times) for times in runs]
    p50 = statistics.median(p for p, _ in per_run)
    p99 = statistics.median(p for _, p in per_run)
    layout = ""
    if not SERVER:
        layout = f"; segments {segment_rows(lite_collection_dir(data_dir, collection))} rows"
    print(
        f"{size:,}: index build wait {index_seconds:.1f}s; in-process p50/p99 per run: "
        + ", ".join(f"{a:.1f}/{b:.1f}" for a, b in per_run)
        + layout,
        flush=True,
    )
    result = {
        "size": size,
        "insert_rows_per_s": size / fill_seconds,
        "recall@10": recall,
        "p50_ms": p50,
        "p99_ms": p99,
        "http_p50_ms": float("nan"),
        "http_p99_ms": float("nan"),
    }
    if not http:
        return result

    db_url = await migrated_database(POSTGRES["admin"])
    try:
        await fill_postgres(db_url, size)
        http_times = await asyncio.to_thread(
            over_http, db_url, data_dir, collection, index, ef, queries, warmup
        )
        if args is not None:
            await busy_runs(args, size, vectors, queries, truth, db_url, data_dir, tmp)
    finally:
        await drop_database(db_url, POSTGRES["admin"])
    result["http_p50_ms"], result["http_p99_ms"] = percentiles(http_times)
    return result


@contextmanager
def milvus_server(python: str | None, tmp: Path, config: dict[str, str]) -> Iterator[None]:
    """With ``python``: a Milvus standalone for the whole run, its URI in SERVER and in the
    services' environment. Without: nothing (milvus-lite under each data directory)."""
    if python is None:
        yield
        return
    from tests.standalone.milvus_standalone import MilvusStandalone, only_loopback

    if not only_loopback():
        raise SystemExit("Milvus binds 0.0.0.0: run this in a loopback-only namespace (unshare -n)")
    server = MilvusStandalone(python, tmp / "standalone", config).start(timeout=300)
    SERVER["uri"] = SERVICE_ENV["SOMA_MILVUS_URI"] = server.uri
    try:
        yield
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--index", default="HNSW")
    parser.add_argument(
        "--ef",
        type=int,
        default=None,
        help="HNSW search ef (default: SOMA_MILVUS_SEARCH_EF's default)",
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed queries before timing")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the queries")
    parser.add_argument("--no-http", dest="http", action="store_false", help="skip the HTTP run")
    parser.add_argument(
        "--under-writes",
        type=float,
        default=0,
        metavar="RATE",
        help="also time HTTP searches while another process writes RATE memories/s",
    )
    parser.add_argument(
        "--right-after-load",
        action="store_true",
        help="also time HTTP searches from the end of a bulk load until the index build ends",
    )
    parser.add_argument(
        "--preload-flush",
        choices=("end", "each"),
        default="end",
        help="flush the preloaded vectors once at the end (default: milvus-lite writes a segment "
        "per 128 MiB of memtable), or after each upsert of 2,000 (lite's merges then decide the "
        "segments, as under the service's flush every second)",
    )
    parser.add_argument(
        "--lite-in-thread",
        action="store_true",
        help="serve milvus-lite from a thread of the service (SOMA_MILVUS_LITE_PROCESS=0)",
    )
    parser.add_argument(
        "--milvus-python",
        metavar="PYTHON",
        help="put the vectors on a Milvus 2.3.5 standalone started by this python (its venv has "
        "milvus==2.3.5); only in a loopback-only network namespace",
    )
    parser.add_argument(
        "--milvus-config",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a milvus.yaml setting for the server, by dotted name (repeatable), e.g. "
        "queryNode.segcore.interimIndex.nprobe=128",
    )
    parser.add_argument(
        "--admin-url",
        default=ADMIN_URL,
        help="PostgreSQL to make the bench's databases on (in a namespace: its Unix socket, "
        "postgresql://postgres@/test?host=/var/run/postgresql)",
    )
    parser.add_argument(
        "--writes-namespace",
        default=NAMESPACE,
        help="the namespace --under-writes writes into (default: the searched one)",
    )
    parser.add_argument(
        "--consistency",
        choices=get_args(Consistency),
        help="the served service's SOMA_MILVUS_CONSISTENCY (default: its own default)",
    )
    args = parser.parse_args()
    POSTGRES["admin"] = args.admin_url
    if args.consistency:
        SERVICE_ENV["SOMA_MILVUS_CONSISTENCY"] = args.consistency
    if args.lite_in_thread:
        SERVICE_ENV["SOMA_MILVUS_LITE_PROCESS"] = "0"
    if args.ef is None:
        from somamemory.settings import Settings

        args.ef = Settings.model_fields["milvus_search_ef"].default
    rows = []
    config = dict(item.split("=", 1) for item in args.milvus_config)
    with tempfile.TemporaryDirectory() as tmp, milvus_server(args.milvus_python, Path(tmp), config):
        for size in args.sizes:
            rows.append(
                asyncio.run(
                    run(
                        size,
                        args.queries,
                        args.index,
                        args.ef,
                        args.warmup,
                        args.repeat,
                        args.http,
                        Path(tmp),
                        args,
                    )
                )
            )
    print(
        f"\nindex {args.index}, ef {args.ef}, {DIM}-dim, {args.queries} queries x "
        f"{args.repeat} (median of per-pass p50/p99), top-10, COSINE\n"
    )
    print("| memories | insert rows/s | recall@10 | in-process p50/p99 ms | HTTP p50/p99 ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['size']:,} | {r['insert_rows_per_s']:,.0f} | {r['recall@10']:.3f} | "
            f"{r['p50_ms']:.1f} / {r['p99_ms']:.1f} | "
            f"{r['http_p50_ms']:.1f} / {r['http_p99_ms']:.1f} |"
        )


if __name__ == "__main__":
    main()

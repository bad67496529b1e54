"""HTTP search latency and recall while the vector store is busy (used by search_quality.py).

- ``under_writes``: searches while another process writes memories at a fixed rate.
- ``right_after_load``: searches from the moment a bulk load through the API has returned
  until the vector store's index builds end (it answers by brute force meanwhile).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
from harness import TOKEN, serving

from somamemory.stores.milvus_lite_builds import EXACT_SEARCH_MAX_ROWS

NAMESPACE = "bench"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": NAMESPACE}


def more_vectors(n: int, dim: int, seed: int = 11) -> np.ndarray:
    """``n`` new vectors around the same centres as ``search_quality.dataset`` (its seed 7)."""
    centres = np.random.default_rng(7).normal(size=(2000, dim)).astype(np.float32)
    rng = np.random.default_rng(seed)
    vectors = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _search(client: httpx.Client, query: np.ndarray) -> tuple[list[int], float]:
    started = time.perf_counter()
    response = client.post("/memories/search", json={"vector": query.tolist(), "top_k": 10})
    elapsed = time.perf_counter() - started
    response.raise_for_status()
    return [int(float(hit["coord"])) for hit in response.json()["memories"]], elapsed


# ── writes at a fixed rate, in a process of their own ─────────────────────────────────────


async def _write_paced(
    url: str, rate: float, first: int, dim: int, namespace: str, stop: Any, out: Any
) -> None:
    import aiohttp

    vectors = more_vectors(int(rate * 120), dim)  # two minutes of writes, then they repeat
    ok = failed = 0
    in_flight: set[asyncio.Task[None]] = set()

    async def one(session: aiohttp.ClientSession, i: int) -> None:
        nonlocal ok, failed
        coord = first + i
        vector = vectors[i % len(vectors)].tolist()
        body = {"coord": f"{coord}.0", "payload": {"i": coord}, "vector": vector}
        try:
            async with session.post("/memories", json=body) as response:
                await response.read()
                ok += response.status == 200
                failed += response.status != 200
        except aiohttp.ClientError:
            failed += 1

    headers = {**HEADERS, "X-Soma-Namespace": namespace}
    async with aiohttp.ClientSession(url, headers=headers) as session:
        started = time.perf_counter()
        i = 0
        out.put("started")
        while not stop.is_set():
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) < 256:  # open loop, bounded: a slow service shows as a lower rate
                task = asyncio.create_task(one(session, i))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            i += 1
        await asyncio.gather(*in_flight)
        elapsed = time.perf_counter() - started
    out.put({"ok": ok, "failed": failed, "seconds": elapsed})


def _writer(
    url: str, rate: float, first: int, dim: int, namespace: str, stop: Any, out: Any
) -> None:
    asyncio.run(_write_paced(url, rate, first, dim, namespace, stop, out))


def under_writes(
    env: dict[str, str],
    data_dir: Path,
    queries: np.ndarray,
    warmup: int,
    repeat: int,
    rate: float,
    first_coord: int,
    lead_in: float = 5.0,
    writes_namespace: str = NAMESPACE,
) -> dict[str, Any]:
    """Sequential searches while a separate process POSTs ``rate`` memories/s (own vectors),
    into the searched namespace unless ``writes_namespace`` names another."""
    spawn = multiprocessing.get_context("spawn")
    stop, out = spawn.Event(), spawn.Queue()
    found: list[list[int]] = []
    times: list[float] = []
    with (
        serving(data_dir, env) as url,
        httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client,
    ):
        for query in queries[:warmup]:
            _search(client, query)
        writer = spawn.Process(
            target=_writer,
            args=(url, rate, first_coord, queries.shape[1], writes_namespace, stop, out),
        )
        writer.start()
        assert out.get(timeout=120) == "started"
        time.sleep(lead_in)  # past the first flushes and merges the writes cause
        started = time.perf_counter()
        for _ in range(repeat):
            for query in queries:
                hits, elapsed = _search(client, query)
                times.append(elapsed)
                found.append(hits)
        searching = time.perf_counter() - started
        stop.set()
        written = out.get(timeout=120)
        writer.join()
    return {
        "found": found,
        "times": times,
        "search_seconds": searching,
        "writes_ok": written["ok"],
        "writes_failed": written["failed"],
        "write_rate": written["ok"] / written["seconds"],
    }


# ── right after a bulk load ───────────────────────────────────────────────────────────────


def lite_collection_dir(data_dir: Path, collection: str) -> Path:
    """A milvus-lite collection's directory (it carries a suffix after the configured name)."""
    (found,) = (data_dir / "milvus.db" / "collections").glob(f"{collection}*")
    return found


def _partitions(collection_dir: Path) -> Iterator[tuple[Path, list[str]]]:
    """Each partition's directory and the data files (segments) the manifest names in it."""
    manifest = json.loads((collection_dir / "manifest.json").read_text())
    for name, partition in manifest["partitions"].items():
        yield collection_dir / "partitions" / name, partition["data_files"]


def unindexed_segments(collection_dir: Path) -> int:
    """Data files of the collection that should have a vector index sidecar and do not yet
    (milvus-lite 3.2 layout; segments the service searches exactly have none), plus the data
    files a merge has written and not yet swapped in (it builds their index first)."""
    try:
        missing = 0
        for files, data_files in _partitions(collection_dir):
            built = {p.name.split(".", 1)[0] for p in (files / "indexes").glob("*.vector.*")}
            named = {Path(data_file).name for data_file in data_files}
            missing += sum(p.name not in named for p in (files / "data").glob("*.parquet"))
            for data_file in data_files:
                if Path(data_file).stem in built:
                    continue
                rows = pq.read_metadata(files / data_file).num_rows
                missing += rows >= EXACT_SEARCH_MAX_ROWS
    except (OSError, ValueError):
        return -1  # being rewritten: ask again
    return missing


def segment_rows(collection_dir: Path) -> list[int]:
    """Rows of each data file of a milvus-lite collection (its segments), largest first."""
    rows = [
        pq.read_metadata(files / data_file).num_rows
        for files, data_files in _partitions(collection_dir)
        for data_file in data_files
    ]
    return sorted(rows, reverse=True)


async def _bulk_load(url: str, vectors: np.ndarray, batch: int, clients: int) -> None:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for start in range(0, len(vectors), batch):
        queue.put_nowait(start)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            start = queue.get_nowait()
            items = [
                {"coord": f"{i}.0", "payload": {"i": i}, "vector": vectors[i].tolist()}
                for i in range(start, min(start + batch, len(vectors)))
            ]
            response = await client.post("/memories/batch", json={"items": items})
            response.raise_for_status()
            assert response.json()["failed"] == 0, response.text[:500]

    async with httpx.AsyncClient(base_url=url, headers=HEADERS, timeout=600) as client:
        await asyncio.gather(*(worker(client) for _ in range(clients)))


def right_after_load(
    env: dict[str, str],
    data_dir: Path,
    collection: str,
    vectors: np.ndarray,
    queries: np.ndarray,
    batch: int = 1000,
    clients: int = 2,
    settle: float = 3.0,
    limit: float = 1800.0,
    pending: Callable[[], int] | None = None,
    first: float = 30.0,
) -> dict[str, Any]:
    """Bulk-load ``vectors`` through ``POST /memories/batch`` into an empty service, then search
    (cycling through ``queries``) until every segment has its index for ``settle`` seconds, and
    for ``first`` seconds at least (``first_times``: their times, whatever the segments).
    ``pending`` counts what still waits for an index (0: nothing); by default milvus-lite's
    unindexed segments under ``data_dir``."""
    found: list[tuple[int, list[int]]] = []
    times: list[float] = []
    ended: list[float] = []
    with (
        serving(data_dir, env) as url,
        httpx.Client(base_url=url, headers=HEADERS, timeout=60) as client,
    ):
        started = time.perf_counter()
        asyncio.run(_bulk_load(url, vectors, batch, clients))
        loaded = time.perf_counter()
        collection_dir = None
        if pending is None:
            collection_dir = lite_collection_dir(data_dir, collection)
            pending = lambda: unindexed_segments(collection_dir)  # noqa: E731
        indexed_since: float | None = None
        q = 0
        while time.perf_counter() - loaded < limit:
            hits, elapsed = _search(client, queries[q % len(queries)])
            now = time.perf_counter()
            times.append(elapsed)
            ended.append(now)
            found.append((q % len(queries), hits))
            q += 1
            if pending() == 0:
                indexed_since = indexed_since or now
                if now - indexed_since >= settle and now - loaded >= first:
                    break
            else:
                indexed_since = None
    end = indexed_since or time.perf_counter()
    cut = sum(1 for t in ended if t <= end)  # the settle period's searches ran on indexes
    return {
        "load_seconds": loaded - started,
        "window_seconds": end - loaded,
        "found": found[:cut],
        "times": times[:cut],
        "after_times": times[cut:],
        "first_times": [t for t, at in zip(times, ended, strict=True) if at - loaded <= first],
        "segments": segment_rows(collection_dir) if collection_dir else [],
    }

"""Write throughput with the default local model against the embedder's own throughput.

The same texts (user-like memories of 10-30 words, generated with a fixed seed) go through two
paths in each run. The embedder alone: the model the service loads (``load_local_model`` on the
default ``Settings``), in a process of its own, in calls the size of the group commits the write
case can form (``SOMA_BATCH_SIZE``, at most the concurrency). The service: ``somamemory serve``
on the local model (the machine's PostgreSQL and Redis, milvus-lite), batching on, single POST
/memories at concurrency 64 from this process. A run alternates the two over ``--chunks`` slices
of the texts (the embedder's slice first, with the service idle), so that other load on the
machine hits both alike; each path's rate is its texts over its summed time, and both start cold
(model loaded, nothing encoded yet). The ratio of the medians is the write path's share of the
embedder's throughput; the mean group commit the service formed comes from its /metrics.

    python bench/model_writes.py [--memories 1500] [--chunks 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import random
import re
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import httpx
from harness import TOKEN, drop_database, migrated_database, serving
from throughput import _env, single_posts

from somamemory.embeddings.choice import load_local_model
from somamemory.settings import Settings

CONCURRENCY = 64
_WHEN = ["Yesterday", "Last week", "On Monday", "This morning", "In March", "After lunch"]
_WHO = ["I", "my sister Anna", "Tom from work", "our neighbour", "my manager", "Priya", "we"]
_DID = [
    "booked a table for {n} at",
    "left the spare keys at",
    "talked about moving to",
    "bought a second-hand bike near",
    "signed up for the {n} o'clock class at",
    "picked up parcel number {n} from",
    "planned a long weekend in",
    "lost the receipt from",
]
_WHERE = [
    "the Italian place on Elm Street",
    "Lisbon",
    "the garden centre",
    "the library downtown",
    "the farmers market",
    "Berlin",
    "the climbing gym by the river",
    "the dentist's office",
]
_AND = [
    "because the old one broke",
    "and it was cheaper than expected",
    "so remind me to call back on Thursday",
    "but the appointment moved to next month",
    "and she prefers the window seat",
    "since the deadline is the end of the quarter",
    "and he is allergic to peanuts",
    "though it rained the whole time",
    "and the door code is {n}",
    "which means we need to leave before {n}",
]


def memories(total: int, seed: int = 0) -> list[str]:
    """``total`` varied first-person memories of 10 to 30 words; the same for the same seed."""
    rng = random.Random(seed)
    texts = []
    for _ in range(total):
        target = rng.randint(10, 30)
        did = rng.choice(_DID).format(n=rng.randint(2, 9))
        words = f"{rng.choice(_WHEN)}, {rng.choice(_WHO)} {did} {rng.choice(_WHERE)}".split()
        for tail in rng.sample(_AND, len(_AND)):
            more = tail.format(n=rng.randint(1000, 9999)).split()
            if len(words) >= target or len(words) + len(more) > 30:
                break
            words += more
        texts.append(" ".join(words) + ".")
    return texts


def load_embedder() -> None:
    """Load the service's default embedder in this process (run in the embedder's process)."""
    embedder = load_local_model(Settings().local_embedding_model)
    assert embedder.info.kind == "onnx", embedder.info  # the bundled model, not a fallback


def embed_seconds(texts: list[str], batch: int) -> float:
    """Seconds the service's default embedder takes on ``texts`` in calls of ``batch``."""
    embedder = load_local_model(Settings().local_embedding_model)  # loaded once per process

    async def encode_all() -> float:
        started = time.perf_counter()
        for start in range(0, len(texts), batch):
            await embedder.embed(texts[start : start + batch])
        return time.perf_counter() - started

    return asyncio.run(encode_all())


def _mean_batch(url: str) -> float:
    """The mean group commit size the service formed, from its metrics."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    text = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
    found = dict(re.findall(r"^somamemory_batch_size_(sum|count) (\S+)$", text, re.M))
    count = float(found.get("count", 0))
    return float(found["sum"]) / count if count else 0.0


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=1500)
    parser.add_argument("--chunks", type=int, default=3, help="alternations per run")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    texts = memories(args.memories)
    batch = min(Settings().batch_size, CONCURRENCY)  # a group commit holds only waiting writes
    spawn = multiprocessing.get_context("spawn")
    alone: list[float] = []
    served: list[float] = []
    batches: list[float] = []
    loads = [os.getloadavg()[0]]
    step = -(-len(texts) // args.chunks)
    for run in range(args.repeat):
        seconds = {"alone": 0.0, "served": 0.0}
        db = await migrated_database()
        try:
            with (
                ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool,
                tempfile.TemporaryDirectory() as tmp,
                serving(Path(tmp) / str(run), _env(db, True), hash_embeddings=False) as url,
            ):
                await asyncio.wrap_future(pool.submit(load_embedder))
                for first in range(0, len(texts), step):
                    chunk = texts[first : first + step]
                    job = pool.submit(embed_seconds, chunk, batch)
                    seconds["alone"] += await asyncio.wrap_future(job)
                    rate = await single_posts(url, len(chunk), CONCURRENCY, texts, first)
                    seconds["served"] += len(chunk) / rate
                batches.append(_mean_batch(url))
        finally:
            await drop_database(db)
        alone.append(len(texts) / seconds["alone"])
        served.append(len(texts) / seconds["served"])
        loads.append(os.getloadavg()[0])
    words = [len(text.split()) for text in texts]
    print(
        f"\n{len(texts)} memories of {min(words)}-{max(words)} words "
        f"(mean {statistics.mean(words):.1f}); load average "
        f"{' -> '.join(f'{load:.2f}' for load in loads)} ({os.cpu_count()} cores)\n"
    )
    runs = " | ".join(f"run {i + 1}" for i in range(args.repeat))
    print(f"| path | {runs} | median texts/s |\n|---|{'---|' * (args.repeat + 1)}")
    for name, samples in (
        (f"embedder alone (calls of {batch})", alone),
        (f"POST /memories, local model, batching on (c={CONCURRENCY})", served),
    ):
        cells = " | ".join(f"{rate:,.0f}" for rate in samples)
        print(f"| {name} | {cells} | {statistics.median(samples):,.0f} |")
    ratio = statistics.median(served) / statistics.median(alone)
    paired = ", ".join(f"{w / e:.0%}" for w, e in zip(served, alone, strict=True))
    print(
        f"\nwrites / embedder: {ratio:.0%} of the medians (target >= 80%), by run {paired}; "
        f"mean group commit by run {', '.join(f'{size:.1f}' for size in batches)} memories"
    )


if __name__ == "__main__":
    asyncio.run(main())

"""Where the service's CPU goes under sustained single writes: a py-spy flame graph, and the share
of samples in milvus-lite's background index builds.

Starts ``somamemory serve`` (the machine's PostgreSQL and Redis, milvus-lite, hash embeddings,
batching on), sends single ``POST /memories`` at concurrency 64 for ``--seconds``, and records the
service process with py-spy (every thread, native frames) twice: an SVG flame graph and
the raw stacks (one window after the other: one tracer at a time), from which it prints the share
of samples under ``_bg_compact_and_index`` and under faiss's ``IndexHNSW::add``.

    python bench/flame_writes.py --seconds 40 --svg bench/flames/writes-after.svg
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil
from harness import TOKEN, drop_database, migrated_database, serving
from throughput import _env

HEADERS = {"Authorization": f"Bearer {TOKEN}", "X-Soma-Namespace": "bench"}
MARKERS = {
    "background compaction + index builds": "_bg_compact_and_index",
    "faiss IndexHNSW add": "IndexHNSW",
}


async def _sustain(url: str, seconds: float, concurrency: int) -> int:
    done = 0
    deadline = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=HEADERS, connector=connector) as session:

        async def worker(n: int) -> None:
            nonlocal done
            i = 0
            while time.monotonic() < deadline:
                i += 1
                body = {"coord": f"{n},{i}", "payload": {"text": f"memory {i} of writer {n}"}}
                async with session.post("/memories", json=body) as response:
                    response.raise_for_status()
                done += 1

        await asyncio.gather(*(worker(n) for n in range(concurrency)))
    return done


def _shares(raw: Path) -> dict[str, float]:
    """Share of all samples whose stack contains each marker (collapsed-stack lines)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        if not number.isdigit():
            continue
        total += int(number)
        for name, marker in MARKERS.items():
            if marker in stack:
                counts[name] += int(number)
    return {name: counts[name] / total if total else 0.0 for name in MARKERS}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--svg", type=Path, required=True)
    args = parser.parse_args()
    db = await migrated_database()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            serving(Path(tmp) / "data", _env(db, True)) as url,
        ):
            server = next(
                child
                for child in psutil.Process().children(recursive=True)
                if "serve" in child.cmdline()
            )
            raw = Path(tmp) / "stacks.txt"
            window = int(args.seconds)
            spy = ["py-spy", "record", "--pid", str(server.pid), "--threads", "--native"]
            spy += ["--rate", "50", "--duration", str(window)]
            # one tracer at a time: the raw stacks (measured), then the flame graph (drawn)
            spies = subprocess.Popen(
                f"{' '.join(spy)} --format raw --output {raw} && "
                f"{' '.join(spy)} --format flamegraph --output {args.svg}",
                shell=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            started = time.monotonic()
            written = await _sustain(url, 2 * args.seconds + 5, 64)
            elapsed = time.monotonic() - started
            spies.wait()
            shares = _shares(raw)
    finally:
        await drop_database(db)
    print(
        f"{written} writes in {elapsed:.1f} s: {written / elapsed:,.0f}/s; flame graph {args.svg}"
    )
    for name, share in shares.items():
        print(f"  {name}: {share:.1%} of the service's samples")


if __name__ == "__main__":
    asyncio.run(main())

"""Export and import throughput (memories/s) at a given size, on the machine's PostgreSQL.

Fills a fresh database with ``--memories`` memories of ``--versions`` versions each (through the
store's own multi-row upsert, no HTTP), exports it to a file, imports that file into a second
fresh database with its vectors written (hash embeddings, milvus-lite: the write path of the
command, not the model, is measured), imports it again (idempotent: nothing changes), and
reindexes the second instance. The peak RSS of the whole run is printed too.

    python bench/transfer.py [--memories 100000] [--versions 2]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import tempfile
import time
from pathlib import Path

from harness import drop_database, migrated_database

from somamemory.models import NewMemory
from somamemory.settings import Settings
from somamemory.stores.postgres import PostgresStore
from somamemory.stores.postgres_pool import create_pool
from somamemory.transfer import commands

FILL_BATCH = 1000


async def _fill(url: str, memories: int, versions: int) -> None:
    pool = await create_pool(url, min_size=1, max_size=2, timeout=5)
    store = PostgresStore(pool)
    try:
        for _ in range(versions):
            for start in range(0, memories, FILL_BATCH):
                await store.put_many(
                    [
                        NewMemory(
                            "bench",
                            f"{i}.0,1.0",
                            "episodic",
                            {"text": f"memory number {i} of the transfer run", "i": i},
                            0.5,
                        )
                        for i in range(start, min(start + FILL_BATCH, memories))
                    ]
                )
    finally:
        await pool.close()


def _settings(url: str, data_dir: Path) -> Settings:
    return Settings(
        postgres_url=url,
        data_dir=data_dir,
        milvus_uri=str(data_dir / "milvus.db"),
        force_hash_embeddings=True,
        api_token="bench",
    )


async def main(memories: int, versions: int) -> None:
    source, target = await migrated_database(), await migrated_database()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            started = time.perf_counter()
            await _fill(source, memories, versions)
            print(
                f"fill: {memories} memories x {versions} versions in "
                f"{time.perf_counter() - started:.1f}s"
            )
            dump = root / "memories.jsonl"

            started = time.perf_counter()
            await commands.export(_settings(source, root / "source"), str(dump))
            export_s = time.perf_counter() - started

            settings = _settings(target, root / "target")
            started = time.perf_counter()
            await commands.import_file(settings, str(dump))
            import_s = time.perf_counter() - started

            started = time.perf_counter()
            _, changed, _links = await commands.import_file(settings, str(dump))
            reimport_s = time.perf_counter() - started
            assert changed == 0, changed

            started = time.perf_counter()
            await commands.reindex(settings)
            reindex_s = time.perf_counter() - started

            size_mb = dump.stat().st_size / 1e6
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n| step ({memories:,} memories, {versions} versions each) | s | memories/s |")
        print("|---|---|---|")
        for name, seconds in [
            (f"export ({size_mb:.0f} MB file)", export_s),
            ("import, vectors written", import_s),
            ("import again (nothing changes)", reimport_s),
            ("reindex", reindex_s),
        ]:
            print(f"| {name} | {seconds:.1f} | {memories / seconds:,.0f} |")
        print(f"\npeak RSS of this process: {rss_mb:.0f} MB")
    finally:
        await drop_database(source)
        await drop_database(target)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=2)
    args = parser.parse_args()
    asyncio.run(main(args.memories, args.versions))

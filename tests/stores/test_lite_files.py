"""milvus-lite's data files keep vectors without a dictionary, and give every vector back exactly,
after a flush and after lite's merges, in a store opened again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from somamemory.models import Memory
from somamemory.stores.milvus import MilvusVectorStore
from somamemory.stores.milvus_lite_files import dictionary_columns

DIM = 16


def _store(path: Path) -> MilvusVectorStore:
    return MilvusVectorStore.connect(
        str(path), collection="files", dim=DIM, token=None, timeout=30, lite_process=True
    )


def test_the_columns_given_a_dictionary_are_those_whose_values_repeat() -> None:
    schema = pa.schema(
        [
            ("_seq", pa.int64()),
            ("id", pa.string()),
            ("importance", pa.float64()),
            ("vector", pa.list_(pa.float32())),
            ("fixed", pa.list_(pa.float32(), DIM)),
            ("fields", pa.string()),
        ]
    )
    assert dictionary_columns(schema) == ["_seq", "id", "fields"]


def test_flushed_and_merged_files_hold_plain_vectors_that_read_back_exactly(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(9)
    vectors = rng.normal(size=(600, DIM))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = datetime.now(UTC)

    async def write_then_read() -> dict[int, list[float] | None]:
        store = _store(tmp_path / "milvus.db")
        for start in range(0, 600, 100):  # six flushes: lite merges small files as it goes
            batch = [
                (
                    Memory("ns", f"{i}.0", "episodic", {"i": i}, 0.0, 1, now, now),
                    vectors[i].tolist(),
                )
                for i in range(start, start + 100)
            ]
            await store.upsert(batch)
            await store.flush()
        await store.close()
        again = _store(tmp_path / "milvus.db")
        try:
            return {i: await again.get_vector("ns", f"{i}.0") for i in (0, 250, 599)}
        finally:
            await again.close()

    read = asyncio.run(write_then_read())
    for i, vector in read.items():
        assert vector == np.float32(vectors[i]).tolist()

    files = list(tmp_path.rglob("data_*.parquet"))
    assert files
    for file in files:
        group = pq.ParquetFile(file).metadata.row_group(0)
        encodings = {
            group.column(c).path_in_schema: group.column(c).encodings
            for c in range(group.num_columns)
        }
        vector_pages = [e for name, e in encodings.items() if name.startswith("vector")]
        assert vector_pages and all("RLE_DICTIONARY" not in e for e in vector_pages), encodings
        assert "RLE_DICTIONARY" in encodings["id"]  # the other columns keep theirs

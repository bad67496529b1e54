"""What milvus-lite's data files cost to write and read: pyarrow's defaults (a dictionary for every
column, lite's own) against the store's (no dictionary for floats and vectors,
``stores/milvus_lite_files.py``). Tables of the store's collection shape (key, namespace, coord,
type, version, importance, filterable fields, a 384-float vector) at the sizes lite writes: a
flush of one second of writes, a merge of small segments, a large segment. CPU time, best of
three; the file's size; the table read back must equal the one written.

    python bench/lite_files.py [--rows 200 2000 20000]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from somamemory.stores.milvus_lite_files import write_table

DIM = 384


def _table(rows: int, rng: np.random.Generator) -> pa.Table:
    vectors = rng.normal(size=(rows, DIM)).astype(np.float32)
    return pa.table(
        {
            "_seq": pa.array(np.arange(rows, dtype=np.int64)),
            "id": pa.array([f"{i:040x}" for i in range(rows)]),
            "namespace": pa.array(["bench"] * rows),
            "coord": pa.array([f"{i}.0" for i in range(rows)]),
            "memory_type": pa.array(["episodic"] * rows),
            "version": pa.array(np.ones(rows, dtype=np.int64)),
            "importance": pa.array(np.zeros(rows)),
            "fields": pa.array(['{"topic": "ops"}'] * rows),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), DIM),
        }
    )


def _cpu_ms(call: Callable[[], Any], repeat: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(repeat):
            call()
        best = min(best, (time.process_time() - started) / repeat * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200, 2000, 20000])
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    writers: dict[str, Callable[[pa.Table, Path], None]] = {
        "pyarrow defaults (lite's)": lambda table, path: pq.write_table(table, path),
        "no dictionary for floats": write_table,
    }
    print("| rows | files | write ms CPU | read ms CPU | size MB |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.parquet"
        for rows in args.rows:
            table = _table(rows, rng)
            repeat = max(1, 4000 // rows)
            for name, write in writers.items():
                write_ms = _cpu_ms(functools.partial(write, table, path), repeat)
                read_ms = _cpu_ms(lambda: pq.read_table(path), repeat)
                if not pq.read_table(path).equals(table):
                    raise SystemExit(f"{name}: the table read back differs")
                size = path.stat().st_size / 1e6
                print(f"| {rows:,} | {name} | {write_ms:.2f} | {read_ms:.2f} | {size:.2f} |")


if __name__ == "__main__":
    main()

"""milvus-lite's data files without dictionary pages for floating-point columns.

Lite writes each flushed or merged segment as a Parquet file with pyarrow's defaults, which
dictionary-encode every column. A vector's floats hardly ever repeat, so that dictionary is
built, found useless and written all the same: files of 200 to 2,000 rows were a fifth larger
and three to four times slower to write (``python bench/lite_files.py``; no difference at 20,000
rows, where pyarrow gives the dictionary up). Under steady writes lite flushes every
second and merges small segments again and again, on the cores searches need. Here the
dictionary is kept for the columns where values repeat (strings, integers) and left out for
floats and lists of them. The files stay Parquet with the same schema: lite (or any reader)
reads files of either kind.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .milvus_lite_patch import patch


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth a dictionary: all but floats and (fixed-size) lists of values."""
    return [
        field.name
        for field in schema
        if not (
            pa.types.is_floating(field.type)
            or pa.types.is_list(field.type)
            or pa.types.is_fixed_size_list(field.type)
        )
    ]


def write_table(table: pa.Table, where: Any, **options: Any) -> None:
    """``pq.write_table``, dictionary pages only for ``dictionary_columns``."""
    options.setdefault("use_dictionary", dictionary_columns(table.schema))
    pq.write_table(table, where, **options)


def install_plain_vector_pages() -> None:
    """Make lite's data files (flushes and merges) write vectors without a dictionary (once)."""
    try:
        from milvus_lite.storage import data_file
    except ImportError:
        return
    patch(
        data_file,
        "pq",
        lambda parquet: SimpleNamespace(**{**vars(parquet), "write_table": write_table}),
        otherwise="its data files keep a dictionary of every column (slower flushes and merges)",
    )

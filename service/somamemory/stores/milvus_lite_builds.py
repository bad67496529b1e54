"""milvus-lite's index builds: on one thread, and only for segments large enough to need one.

milvus-lite 3.2 rebuilds a segment's HNSW index from scratch after every flush and every merge of
segments, on a background thread where faiss's OpenMP pool takes every core. Under sustained
writes that work competed with requests for both cores (a third of the service's samples). One
build thread keeps the same indexes (same parameters, same recall) at about 60% of the CPU; the
OpenMP setting is per calling thread, so it is made inside lite's background thread itself.

Most of those builds were of small segments: each flush writes one, and lite merges them four
at a time, so under steady writes every vector was indexed again at each merge on its way to a
large segment. A segment under ``EXACT_SEARCH_MAX_ROWS`` rows gets no index: the search executor
(``milvus_lite_search``) compares the query with each of its vectors, which is exact and costs
about what an HNSW search of it at the store's ef does.

The background thread (merges and builds) runs at the lowest CPU priority, so requests keep the
cores while it works. While searches keep every core busy a build waits, and the segment it is
for is searched exactly meanwhile: correct, and slower than through its index.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from .milvus_lite_patch import patch

# Rows below which a segment is searched exactly rather than through an index. One query, 384
# dims, one thread, at 5,000 / 10,000 / 20,000 / 40,000 rows: exact 0.20 / 0.39 / 0.70 / 1.35
# ms; HNSW (M 16, ef 512) 0.42 / 0.44 / 0.48 / 0.56 ms; building that index 0.24 / 0.53 / 1.24
# / 3.45 s, paid again for every segment a merge makes.
EXACT_SEARCH_MAX_ROWS = 20_000


def _yield_to_requests() -> None:
    """Give the calling thread the lowest CPU priority (Linux: a thread has its own nice
    value), so merges and index builds take the cores requests leave idle."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def install_single_thread_builds() -> None:
    """Wrap lite's background compaction and index build to run faiss on one thread (once)."""
    try:
        import faiss
        from milvus_lite.engine.collection import Collection
    except ImportError:
        return

    def on_one_thread(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapped(self: Any, *args: Any, **kwargs: Any) -> Any:
            faiss.omp_set_num_threads(1)  # this (background) thread's OpenMP pool
            _yield_to_requests()
            return original(self, *args, **kwargs)

        return wrapped

    patch(
        Collection, "_bg_compact_and_index", on_one_thread, otherwise="index builds keep every core"
    )


def install_small_segments_unindexed() -> None:
    """Keep lite from building or loading a vector index for segments under
    ``EXACT_SEARCH_MAX_ROWS`` rows (once); scalar and sparse indexes are left as they are."""
    try:
        from milvus_lite.storage.segment import Segment
    except ImportError:
        return

    def skip_small(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapped(self: Any, spec: Any, index_dir: str) -> Any:
            if self.num_rows < EXACT_SEARCH_MAX_ROWS and spec.index_type != "SPARSE_INVERTED_INDEX":
                return None
            return original(self, spec, index_dir)

        return wrapped

    patch(
        Segment,
        "build_or_load_index",
        skip_small,
        otherwise="every segment gets its vector index, however small",
    )

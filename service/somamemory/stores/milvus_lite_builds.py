"""milvus-lite's background index builds on one thread, so they leave a core to the requests.

milvus-lite 3.2 rebuilds a segment's HNSW index from scratch after every flush and every merge of
segments, on a background thread where faiss's OpenMP pool takes every core. Under sustained
writes that work competed with requests for both cores (a third of the service's samples). One
build thread keeps the same indexes (same parameters, same recall) at about 60% of the CPU; the
OpenMP setting is per calling thread, so it is made inside lite's background thread itself.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from .milvus_lite_patch import patch


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
            return original(self, *args, **kwargs)

        return wrapped

    patch(
        Collection, "_bg_compact_and_index", on_one_thread, otherwise="index builds keep every core"
    )

"""milvus-lite's background index builds on one thread, so they leave a core to the requests.

milvus-lite 3.2 rebuilds a segment's HNSW index from scratch after every flush and every merge of
segments, on a background thread where faiss's OpenMP pool takes every core. Under sustained
writes that work competed with requests for both cores (a third of the service's samples). One
build thread keeps the same indexes (same parameters, same recall) at about 60% of the CPU; the
OpenMP setting is per calling thread, so it is made inside lite's background thread itself.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_LITE_VERSIONS = ("3.2.",)
_lock = threading.Lock()
_installed = False


def install_single_thread_builds() -> None:
    """Wrap lite's background compaction and index build to run faiss on one thread (once)."""
    global _installed
    try:
        import faiss
        import milvus_lite
        from milvus_lite.engine.collection import Collection
    except ImportError:
        return
    with _lock:
        if _installed:
            return
        original: Callable[..., Any] | None = getattr(Collection, "_bg_compact_and_index", None)
        if original is None or not str(milvus_lite.__version__).startswith(_LITE_VERSIONS):
            log.warning("milvus-lite %s: index builds keep every core", milvus_lite.__version__)
            return

        @functools.wraps(original)
        def on_one_thread(self: Any, *args: Any, **kwargs: Any) -> Any:
            faiss.omp_set_num_threads(1)  # this (background) thread's OpenMP pool
            return original(self, *args, **kwargs)

        Collection._bg_compact_and_index = on_one_thread  # type: ignore[method-assign]
        _installed = True

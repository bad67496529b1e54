"""milvus-lite's Arrow buffers in an allocator that gives freed memory back.

milvus-lite keeps its segments in Arrow tables and rewrites them on every flush and merge, so
under sustained writes Arrow allocates and frees tens of MiB a second from several threads.
Arrow's default pool on Linux (mimalloc) kept much of that memory after it was freed: in a soak
whose data stopped growing, its region grew by about 100 MiB in five minutes while the rest of
the process stayed flat. Arrow's jemalloc pool returns freed pages to the system after a short
decay, so the resident size follows what is live.

Arrow's C++ code picks its default pool once, when pyarrow is first imported (pymilvus imports
it), from ``ARROW_DEFAULT_MEMORY_POOL``; pyarrow's own calls can be switched later. So the
server sets that variable before anything imports pyarrow, and opening milvus-lite switches
pyarrow's default as well, for a process that imported pyarrow first. A pool the operator
chose through the variable is left alone.

jemalloc also holds pages freed in its arenas before returning them: Arrow builds it to decay them
over a second, yet after each merge of segments the serve process kept 50-60 MiB of such pages
for the ten seconds or so until the merged segment's index was built (Arrow's own count of
allocated bytes rose by 6 MiB): in the soak (bench/soak.py --working-set 2000) its resident size
swung by 28% of its minimum. Returning them at once (``dirty_decay_ms:0,muzzy_decay_ms:0`` in
``JE_ARROW_MALLOC_CONF``, which jemalloc reads when it starts) the swing was 8-11%, at the same
throughput and CPU. A configuration the operator gave in that variable is left alone.
"""

from __future__ import annotations

import logging
import os
import sys
import threading

log = logging.getLogger(__name__)

POOL_VARIABLE = "ARROW_DEFAULT_MEMORY_POOL"
JEMALLOC_VARIABLE = "JE_ARROW_MALLOC_CONF"
RETURN_AT_ONCE = "dirty_decay_ms:0,muzzy_decay_ms:0"
_lock = threading.Lock()
_installed = False


def prefer_returning_pool() -> None:
    """Before pyarrow is imported: make jemalloc the default of Arrow's C++ code as well, one
    that returns freed pages at once."""
    if "pyarrow" not in sys.modules:
        os.environ.setdefault(POOL_VARIABLE, "jemalloc")
        os.environ.setdefault(JEMALLOC_VARIABLE, RETURN_AT_ONCE)


def install_returning_pool() -> None:
    """Make pyarrow's default pool jemalloc (once), unless the operator chose one."""
    global _installed
    with _lock:
        if _installed or os.environ.get(POOL_VARIABLE):
            return
        try:
            import pyarrow
        except ImportError:
            return
        try:
            pool = pyarrow.jemalloc_memory_pool()
        except NotImplementedError:  # a pyarrow built without jemalloc
            log.warning("pyarrow has no jemalloc pool: milvus-lite keeps Arrow's default pool")
            return
        pyarrow.set_memory_pool(pool)
        if not os.environ.get(JEMALLOC_VARIABLE):
            pyarrow.jemalloc_set_decay_ms(0)  # jemalloc started already: its arenas from now on
        _installed = True

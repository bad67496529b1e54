"""milvus-lite's in-memory delete marks dropped once no stored row is left for them to hide.

milvus-lite 3.2 keeps, per collection, the sequence number of the last delete of every primary
key it was asked to delete (``DeltaIndex``) and drops an entry only when the oldest row of every
data file is newer than it. One memory that is never rewritten holds that bound at its age, so
the map grew by an entry (~200 bytes) for every distinct vector deleted, as long as the process
ran; every read copies the map whole, and the search executor (``milvus_lite_search``) hands a
search to lite's per-row one when marks are many (7% of a soak's searches, all in its second
half, with 316 marks on 3,300 rows). A mark hides rows older than itself; it is needed only
while some segment still holds an older row of its key (a merge drops such rows for good, and a
later write of the key has a larger sequence number).

So after lite reconciles its segments with the data files (after every flush and every merge,
under the collection's maintenance lock, which reads take to snapshot segments and marks
together), the marks no segment row needs are dropped. The delete files on disk stay as lite
keeps them: a restart reads them back and the first flush drops the marks again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

from .milvus_lite_patch import patch


def drop_unneeded_marks(delta_index: Any, segments: Iterable[Any]) -> int:
    """Drop the delete marks of ``delta_index`` that hide no row of ``segments``; how many.

    A mark is kept while a segment holds a row of its key older than the delete. Nothing is
    dropped when a segment repeats a key (its ``pk_to_row`` then names only one of the rows).
    """
    marks = getattr(delta_index, "_map", None)
    if not isinstance(marks, dict) or not marks:
        return 0
    held = tuple(segments)
    if any(len(seg.pk_to_row) != seg.num_rows for seg in held):
        return 0
    unneeded = [
        (pk, seq)
        for pk, seq in list(marks.items())
        if not any(
            (row := seg.pk_to_row.get(pk)) is not None and int(seg.seqs[row]) < seq for seg in held
        )
    ]
    for pk, seq in unneeded:
        if marks.get(pk) == seq:
            del marks[pk]
    return len(unneeded)


def install_tombstone_gc() -> None:
    """After each segment refresh of a lite collection, drop the marks no row needs (once)."""
    try:
        from milvus_lite.engine.collection import Collection
    except ImportError:
        return

    def and_drop(refresh: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(refresh)
        def refresh_and_drop(self: Any, *args: Any, **kwargs: Any) -> Any:
            result = refresh(self, *args, **kwargs)
            delta_index = getattr(self, "_delta_index", None)
            cache = getattr(self, "_segment_cache", None)
            if delta_index is not None and isinstance(cache, dict):
                drop_unneeded_marks(delta_index, cache.values())
            return result

        return refresh_and_drop

    patch(
        Collection,
        "_refresh_segment_cache",
        and_drop,
        otherwise="delete marks are kept while any older row lives",
    )

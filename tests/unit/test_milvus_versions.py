"""Which Milvus servers need upserts split into delete + insert (milvus-io/milvus#30607)."""

from __future__ import annotations

import pytest

from somamemory.stores.milvus import _upsert_misroutes


@pytest.mark.parametrize(
    ("version", "split"),
    [
        ("v2.3.5-lite", True),
        ("v2.3.21", True),
        ("v2.4.0", False),
        ("2.5.4", False),
        ("milvus_lite-3.2.2", False),
        ("unknown", True),
    ],
)
def test_servers_before_2_4_get_split_upserts(version: str, split: bool) -> None:
    assert _upsert_misroutes(version) is split

"""Request filters become a neutral tree; the Milvus store compiles it, escaping every name and
value (the HTTP tests in tests/search check that hostile input cannot widen a search)."""

from __future__ import annotations

import pytest

from somamemory.errors import InvalidInput
from somamemory.filters import Equals, OneOf, SearchFilter, parse_filter
from somamemory.stores.milvus_filter import milvus_filter


def test_filters_parse_into_a_tree_of_equalities_and_memberships() -> None:
    parsed = parse_filter(
        "ns",
        {"topic": "tea", "n": [1, 2.5, True], "memory_type": ["semantic", "episodic"]},
        memory_type="semantic",
    )
    assert parsed == SearchFilter(
        "ns", ("semantic",), (Equals("topic", "tea"), OneOf("n", (1, 2.5, True)))
    )


def test_disjoint_memory_types_match_nothing() -> None:
    assert parse_filter("ns", {"memory_type": "episodic"}, memory_type="semantic") is None


def test_a_bad_filter_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidInput, match="2\\*\\*53"):
        parse_filter("ns", {"n": 2**60})


def test_milvus_compiles_the_tree_with_every_name_and_value_escaped() -> None:
    parsed = parse_filter(
        "ns",
        {'to"pic\\': 'a"b\\', "n": [1, 2.5, True], "one": ["x"], "memory_type": "semantic"},
    )
    assert parsed is not None
    assert milvus_filter(parsed) == (
        'namespace == "ns" and memory_type in ["semantic"]'
        ' and fields["to\\"pic\\\\"] == "a\\"b\\\\"'
        ' and (fields["n"] == 1 or fields["n"] == 2.5 or fields["n"]["bool"] == true)'
        ' and fields["one"] == "x"'
    )


def test_no_filter_keeps_to_the_namespace() -> None:
    assert milvus_filter(SearchFilter("a.b-c")) == 'namespace == "a.b-c"'

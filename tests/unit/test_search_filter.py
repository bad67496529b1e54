"""Request filters become a neutral tree; the Milvus store compiles it, escaping every name and
value, and the SQL compiler takes each as a parameter (the HTTP tests in tests/search check
that hostile input cannot widen a search; tests/stores/test_filter_agreement.py that the two
compilers agree)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from somamemory.errors import InvalidInput
from somamemory.filters import (
    AnyOf,
    Compare,
    Equals,
    Exists,
    Not,
    OneOf,
    SearchFilter,
    parse_filter,
)
from somamemory.models import Memory
from somamemory.stores.milvus_filter import milvus_fields, milvus_filter
from somamemory.stores.postgres_filter import compile_where


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


def test_operators_parse_into_nodes_with_typed_operands() -> None:
    parsed = parse_filter(
        "ns",
        {
            "$or": [{"importance": {"$gte": 0.5}}, {"tag": {"$nin": ["a", 1]}}],
            "created_at": {"$lt": "2026-01-01T09:00:00+09:00"},
            "note": {"$exists": False},
            "$not": {"rank": {"$not": {"$gt": 3}}},
        },
    )
    assert parsed == SearchFilter(
        "ns",
        (),
        (
            AnyOf((Compare("importance", "gte", 0.5), Not(OneOf("tag", ("a", 1))))),
            Compare("created_at", "lt", datetime(2026, 1, 1, tzinfo=UTC)),
            Not(Exists("note")),
            Not(Not(Compare("rank", "gt", 3))),
        ),
    )


def test_a_time_without_an_offset_is_utc() -> None:
    parsed = parse_filter("ns", {"updated_at": "2026-03-01T12:00:00"})
    assert parsed is not None
    assert parsed.conditions == (Equals("updated_at", datetime(2026, 3, 1, 12, tzinfo=UTC)),)


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        ({"$or": [{"a": 1}, {"b": {"$gt": True}}]}, "filters.$or[1].b.$gt: booleans have no order"),
        ({"a": {"$like": "x"}}, "filters.a.$like: unknown operator '$like'"),
        ({"created_at": "0001-01-01T00:00:00+05:00"}, "filters.created_at: '0001-01-01T00:00"),
        ({"version": True}, "filters.version: version is a number"),
    ],
)
def test_a_bad_operator_is_refused_with_its_path(filters: dict, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_filter("ns", filters)
    assert str(refused.value).startswith(message)


def test_milvus_writes_every_negation_out_in_full() -> None:
    """Milvus reads a comparison on a missing key as null, and ``not null`` as null: a negated
    leaf spells out "missing, or of another type, or the opposite comparison"."""
    parsed = parse_filter("ns", {"$not": {"$or": [{"n": {"$gt": 2}}, {"flag": True}]}})
    assert parsed is not None
    assert milvus_filter(parsed) == (
        'namespace == "ns" and (((not (exists fields["n"])) or fields["n"] >= "" or '
        '(exists fields["n"]["bool"]) or fields["n"] <= 2)'
        ' and ((not (exists fields["flag"]["bool"])) or fields["flag"]["bool"] != true))'
    )
    times = parse_filter("ns", {"created_at": {"$ne": "1970-01-01T00:00:01Z"}, "version": 2})
    assert times is not None
    assert milvus_filter(times) == (
        'namespace == "ns" and ((not (exists fields["$created_at"])) or '
        'fields["$created_at"] != 1000000) and version == 2'
    )


def test_milvus_escapes_names_and_values_inside_operators() -> None:
    parsed = parse_filter("ns", {'a"] or 1==1 or ["': {"$gte": '" or 1==1 or "\\'}})
    assert parsed is not None
    assert milvus_filter(parsed) == (
        'namespace == "ns" and fields["a\\"] or 1==1 or [\\""] >= "\\" or 1==1 or \\"\\\\"'
    )


def test_sql_takes_every_name_and_value_as_a_parameter() -> None:
    parsed = parse_filter(
        "ns'; drop table memories; --",
        {"x'); --": {"$in": ["'", 2]}, "memory_type": "episodic", "importance": {"$lt": 1}},
    )
    assert parsed is not None
    where, params = compile_where(parsed, 3)
    assert "drop" not in where and "'--" not in where and "x'" not in where
    assert where.startswith("memories.namespace = $3::text AND memories.memory_type = ANY(")
    assert params == [
        "ns'; drop table memories; --",
        ["episodic"],
        "x'); --",
        ["'"],
        "x'); --",
        [2.0],
        1.0,
    ]


def test_payload_fields_named_like_operators_are_not_filterable() -> None:
    memory = Memory(
        "ns", "c", "episodic", {"$created_at": 1, "a": 2**53 + 2, "b": 1.5e300, "ok": 1}, 0.0, 1,
        datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, 0, 0, 2, tzinfo=UTC),
    )  # fmt: skip
    assert milvus_fields(memory) == {"ok": 1, "$created_at": 0, "$updated_at": 2_000_000}

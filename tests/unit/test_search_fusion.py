"""Reciprocal rank fusion and the keyword list's weights (the arithmetic of hybrid search)."""

from __future__ import annotations

import pytest

from somamemory.search_fusion import (
    MIN_DEPTH,
    candidate_depth,
    keyword_weight,
    reciprocal_rank_fusion,
)


def test_a_memory_in_both_lists_sums_its_reciprocal_ranks() -> None:
    fused = reciprocal_rank_fusion(
        {"vector": [("a", 1.0), ("b", 1.0)], "keyword": [("b", 1.0), ("c", 1.0)]}
    )
    assert [(hit.coord, hit.ranks) for hit in fused] == [
        ("b", {"vector": 2, "keyword": 1}),
        ("a", {"vector": 1, "keyword": None}),
        ("c", {"vector": None, "keyword": 2}),
    ]
    assert fused[0].score == pytest.approx(1 / 62 + 1 / 61)


def test_ties_go_to_the_better_best_rank_then_the_lower_coordinate() -> None:
    fused = reciprocal_rank_fusion({"vector": [("z", 1.0), ("y", 1.0)], "keyword": [("x", 1.0)]})
    assert [hit.coord for hit in fused] == ["x", "z", "y"]  # x and z tie at 1/61: by coord


def test_an_entry_of_weight_zero_keeps_its_rank_but_takes_no_part() -> None:
    fused = reciprocal_rank_fusion({"keyword": [("a", 0.0), ("b", 2.0)]})
    assert [(hit.coord, hit.ranks["keyword"], hit.score) for hit in fused] == [
        ("b", 2, pytest.approx(2 / 62))
    ]


@pytest.mark.parametrize(
    ("coverage", "code", "weight"),
    [(1.0, False, 2.0), (0.5, False, 1.0), (0.49, False, 0.0), (0.1, True, 1.0), (0.8, True, 1.6)],
)
def test_a_keyword_hit_takes_part_when_it_holds_half_the_query_or_a_code(
    coverage: float, code: bool, weight: float
) -> None:
    assert keyword_weight(coverage, code) == pytest.approx(weight)


def test_each_list_is_fetched_deeper_than_top_k() -> None:
    assert candidate_depth(1) == MIN_DEPTH
    assert candidate_depth(100) == 300

"""Coordinate parsing and normalisation, by property (hypothesis)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from somamemory.coords import MAX_DIMENSIONS, format_coord, normalize_coord, parse_coord
from somamemory.errors import InvalidCoordinate

finite = st.floats(allow_nan=False, allow_infinity=False)
points = st.lists(finite, min_size=1, max_size=MAX_DIMENSIONS).map(tuple)


@given(points)
def test_normalising_is_idempotent(values: tuple[float, ...]) -> None:
    once = normalize_coord(",".join(repr(v) for v in values))
    assert normalize_coord(once) == once


@given(points)
def test_parse_recovers_every_value_exactly(values: tuple[float, ...]) -> None:
    assert parse_coord(format_coord(values)) == tuple(v + 0.0 for v in values)


@given(points, st.sampled_from(["{:.17g}", "{!r}", " {!r} ", "{:.17e}"]))
def test_every_spelling_of_a_point_names_the_same_memory(
    values: tuple[float, ...], spelling: str
) -> None:
    text = ",".join(spelling.format(v) for v in values)
    assert normalize_coord(text) == format_coord(values)


@given(st.integers(min_value=-(10**15), max_value=10**15))
def test_integers_and_their_float_spelling_agree(n: int) -> None:
    assert normalize_coord(f"{n},{n}") == normalize_coord(f"{n}.0,{n}.000")


@given(st.lists(finite, min_size=MAX_DIMENSIONS + 1, max_size=MAX_DIMENSIONS + 8))
def test_more_than_64_parts_are_refused(values: list[float]) -> None:
    with pytest.raises(InvalidCoordinate, match="at most 64"):
        parse_coord(",".join(map(repr, values)))


@given(
    points,
    st.integers(min_value=0, max_value=MAX_DIMENSIONS - 1),
    st.sampled_from(
        ["nan", "NaN", "inf", "-inf", "Infinity", "", " ", "abc", "1_000", "0x10", "1e999", "--1"]
    ),
)
def test_one_bad_part_sinks_the_coordinate(values: tuple[float, ...], index: int, bad: str) -> None:
    parts = [repr(v) for v in values]
    parts.insert(min(index, len(parts)), bad)
    if len(parts) > MAX_DIMENSIONS:
        parts = parts[:MAX_DIMENSIONS]
        parts[-1] = bad
    with pytest.raises(InvalidCoordinate):
        parse_coord(",".join(parts))


@given(st.text(max_size=40))
def test_any_text_either_parses_to_finite_values_or_is_refused(text: str) -> None:
    try:
        values = parse_coord(text)
    except InvalidCoordinate:
        return
    assert 1 <= len(values) <= MAX_DIMENSIONS
    assert all(math.isfinite(v) for v in values)


def test_negative_zero_and_zero_are_one_memory() -> None:
    assert normalize_coord("-0,-0.0") == normalize_coord("0,0") == "0.0,0.0"

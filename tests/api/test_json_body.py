"""Request bodies parse to exactly what ``json.loads`` gives, errors included, on every route."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from somamemory.api import json_body
from somamemory.api.json_body import parse_json
from somamemory.app import create_app
from somamemory.settings import Settings

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def _same(left: Any, right: Any) -> bool:
    """Equal, with the same types throughout (1 and 1.0 differ) and the sign of zero kept."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    return bool(left == right)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ascii_only=st.booleans())
def test_a_body_parses_to_what_the_standard_library_gives(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only)
    assert _same(parse_json(text.encode()), json.loads(text))


@pytest.mark.parametrize(
    "raw",
    [
        b"123456789012345678901234567890",  # beyond 64 bits: stays an exact int
        b"0.1",
        b"1e400",  # the standard library's inf (the schema refuses it)
        b"-0.0",
        b'{"a": 1, "a": 2}',  # the last of a repeated key
        b"NaN",  # refused by pydantic-core, parsed by the standard library
        b'{"x": -Infinity}',
        b'"\\ud800"',  # a lone surrogate: the payload check refuses it with 400
        b"\xef\xbb\xbf[1]",  # a byte order mark
        '{"x": "\u00e9"}'.encode("utf-16"),  # UTF-16, which json.loads detects
    ],
)
def test_edge_cases_parse_as_the_standard_library_parses_them(raw: bytes) -> None:
    expected = json.loads(raw)
    got = parse_json(raw)
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(got, float) and math.isnan(got)
    else:
        assert _same(got, expected)


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a": }', b"[1, 2", b"{} x", b"\xff"])
def test_a_body_that_is_not_json_fails_as_it_does_in_the_standard_library(raw: bytes) -> None:
    with pytest.raises(ValueError) as expected:
        json.loads(raw)
    with pytest.raises(type(expected.value)) as got:
        parse_json(raw)
    assert str(got.value) == str(expected.value)  # FastAPI reports JSONDecodeError's position


def _json_body_operations() -> list[tuple[str, str]]:
    """Every (method, path) of the API's schema that takes a JSON body, path parameters as "1"."""
    schema = create_app(Settings(api_token="t")).openapi()  # type: ignore[call-arg]
    return [
        (method.upper(), re.sub(r"\{[^}]+\}", "1", path))
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
        if "application/json" in operation.get("requestBody", {}).get("content", {})
    ]


def test_every_route_that_takes_a_json_body_parses_it_this_way(
    client: TestClient, headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed: list[bytes] = []

    def recording(body: bytes) -> Any:
        parsed.append(body)
        return parse_json(body)

    monkeypatch.setattr(json_body, "parse_json", recording)
    operations = _json_body_operations()
    assert ("POST", "/memories") in operations and ("POST", "/memories/search") in operations
    for method, path in operations:
        parsed.clear()
        marker = f'{{"unknown": "{method} {path}"}}'.encode()
        response = client.request(
            method, path, content=marker, headers={**headers, "Content-Type": "application/json"}
        )
        assert response.status_code < 500, (method, path, response.text)
        assert parsed == [marker], (method, path, response.status_code)

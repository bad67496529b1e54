"""Search filters -> a Milvus boolean expression, with every name and value escaped.

Supported: equality, and ``in`` given as a list, on ``memory_type`` and on top-level payload
fields, combined with AND. Names and values are validated first, then written as escaped string
literals, so no input can change the expression's structure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .errors import InvalidInput
from .models import MAX_EXACT_INT, MEMORY_TYPES
from .stores.milvus import MAX_FILTER_STRING, milvus_string

MAX_FIELD_NAME = 256
MAX_IN_VALUES = 100
MAX_FILTERS = 32
# The cost of a search grows with every comparison Milvus evaluates per candidate: bound them all.
MAX_FILTER_VALUES = 256


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _literal(field: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise InvalidInput(f"filter {field!r}: integers beyond 2**53 cannot be matched")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"filter {field!r}: value must be a finite number")
        return repr(value)
    if isinstance(value, str):
        if len(value) > MAX_FILTER_STRING:
            raise InvalidInput(
                f"filter {field!r}: strings longer than {MAX_FILTER_STRING} characters "
                "are not indexed for filtering"
            )
        if _has_control(value):
            raise InvalidInput(f"filter {field!r}: value contains control characters")
        if not _is_unicode(value):
            raise InvalidInput(f"filter {field!r}: value contains a lone surrogate")
        return milvus_string(value)
    raise InvalidInput(
        f"filter {field!r}: values must be strings, numbers, booleans or a list of them"
    )


def _values(field: str, value: Any) -> list[Any]:
    if isinstance(value, list):
        if not 1 <= len(value) <= MAX_IN_VALUES:
            raise InvalidInput(f"filter {field!r}: a list needs 1 to {MAX_IN_VALUES} values")
        return value
    return [value]


def _memory_types(value: Any) -> list[str]:
    types = _values("memory_type", value)
    for memory_type in types:
        if memory_type not in MEMORY_TYPES:
            raise InvalidInput(
                f"memory_type filter {memory_type!r} is not one of {', '.join(MEMORY_TYPES)}"
            )
    return types


def build_filter(
    namespace: str,
    filters: dict[str, Any] | None = None,
    memory_type: str | Sequence[str] | None = None,
) -> str | None:
    """The Milvus expression for one namespace plus the caller's filters (None: matches nothing)."""
    clauses = [f"namespace == {milvus_string(namespace)}"]
    filters = dict(filters or {})
    if len(filters) > MAX_FILTERS:
        raise InvalidInput(f"at most {MAX_FILTERS} filters are allowed")
    types: list[str] = []
    if memory_type is not None:
        types = _memory_types(
            list(memory_type) if not isinstance(memory_type, str) else memory_type
        )
    if "memory_type" in filters:
        from_filters = _memory_types(filters.pop("memory_type"))
        types = [t for t in types if t in from_filters] if types else from_filters
        if not types:
            return None  # asked for two disjoint sets of types
    if types:
        clauses.append(f"memory_type in [{', '.join(milvus_string(t) for t in types)}]")
    total = sum(len(value) if isinstance(value, list) else 1 for value in filters.values())
    if total > MAX_FILTER_VALUES:
        raise InvalidInput(
            f"filters name {total} values in all; at most {MAX_FILTER_VALUES} are allowed"
        )
    for field, value in filters.items():
        if (
            not field
            or len(field) > MAX_FIELD_NAME
            or _has_control(field)
            or not _is_unicode(field)
        ):
            raise InvalidInput(
                f"filter field names must be 1-{MAX_FIELD_NAME} printable characters"
            )
        target = f"fields[{milvus_string(field)}]"
        options = [f"{target} == {_literal(field, item)}" for item in _values(field, value)]
        clauses.append(options[0] if len(options) == 1 else f"({' or '.join(options)})")
    return " and ".join(clauses)

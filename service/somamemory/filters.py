"""Search filters: the request's filters, validated into a small backend-neutral tree.

Supported today: equality, and membership given as a list, on ``memory_type`` and on top-level
payload fields (:func:`filterable_fields`), all of them combined with AND. Every name and value
is checked here (400 with the reason); each vector store compiles the resulting
:class:`SearchFilter` into its own query language (``stores/milvus_filter.py``), escaping as that
language needs.

New operators ($gt, $and, $or ...) become new node types of :data:`Condition`: the parser here
builds them, and every vector store's compiler handles them (mypy checks that none is missed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InvalidInput
from .models import MAX_EXACT_INT, MEMORY_TYPES, MemoryType

MAX_FIELD_NAME = 256
MAX_IN_VALUES = 100
MAX_FILTERS = 32
# The cost of a search grows with every comparison evaluated per candidate: bound them all.
MAX_FILTER_VALUES = 256
# Longer string values are not indexed for filtering (the vector stores keep only shorter ones).
MAX_FILTER_STRING = 1024

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Equals:
    """A top-level payload field equals ``value``."""

    field: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class OneOf:
    """A top-level payload field equals one of ``values``."""

    field: str
    values: tuple[Scalar, ...]


# A condition on the payload: one node of the filter tree.
Condition = Equals | OneOf


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which memories a search may return, validated and free of any query language.

    A memory matches when it is in ``namespace``, its type is one of ``memory_types`` (any type
    when empty), and every one of ``conditions`` holds.
    """

    namespace: str
    memory_types: tuple[MemoryType, ...] = ()
    conditions: tuple[Condition, ...] = ()


def filterable_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload fields a filter can match: top-level scalars (numbers exact as doubles, short
    strings). A vector store keeps these beside each vector and evaluates filters on them."""
    fields: dict[str, Any] = {}
    for key, value in payload.items():
        if isinstance(value, bool) or value is None:
            fields[key] = value
        elif isinstance(value, float):
            if math.isfinite(value):
                fields[key] = value
        elif isinstance(value, int):
            if -MAX_EXACT_INT <= value <= MAX_EXACT_INT:  # larger ones are not exact as doubles
                fields[key] = value
        elif isinstance(value, str) and len(value) <= MAX_FILTER_STRING:
            fields[key] = value
    return fields


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _scalar(field: str, value: Any) -> Scalar:
    """``value`` if a filter may compare a payload field with it, else a 400 saying why."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise InvalidInput(f"filter {field!r}: integers beyond 2**53 cannot be matched")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"filter {field!r}: value must be a finite number")
        return value
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
        return value
    raise InvalidInput(
        f"filter {field!r}: values must be strings, numbers, booleans or a list of them"
    )


def _values(field: str, value: Any) -> list[Any]:
    if isinstance(value, list):
        if not 1 <= len(value) <= MAX_IN_VALUES:
            raise InvalidInput(f"filter {field!r}: a list needs 1 to {MAX_IN_VALUES} values")
        return value
    return [value]


def _memory_types(value: Any) -> list[MemoryType]:
    types = _values("memory_type", value)
    for memory_type in types:
        if memory_type not in MEMORY_TYPES:
            raise InvalidInput(
                f"memory_type filter {memory_type!r} is not one of {', '.join(MEMORY_TYPES)}"
            )
    return types


def _condition(field: str, value: Any) -> Condition:
    if not field or len(field) > MAX_FIELD_NAME or _has_control(field) or not _is_unicode(field):
        raise InvalidInput(f"filter field names must be 1-{MAX_FIELD_NAME} printable characters")
    if isinstance(value, list):
        return OneOf(field, tuple(_scalar(field, item) for item in _values(field, value)))
    return Equals(field, _scalar(field, value))


def parse_filter(
    namespace: str,
    filters: dict[str, Any] | None = None,
    memory_type: str | Sequence[str] | None = None,
) -> SearchFilter | None:
    """The search filter for one namespace plus the caller's filters (400 on bad ones).

    None when nothing can match (``memory_type`` and ``filters["memory_type"]`` are disjoint).
    """
    filters = dict(filters or {})
    if len(filters) > MAX_FILTERS:
        raise InvalidInput(f"at most {MAX_FILTERS} filters are allowed")
    types: list[MemoryType] = []
    if memory_type is not None:
        types = _memory_types(
            list(memory_type) if not isinstance(memory_type, str) else memory_type
        )
    if "memory_type" in filters:
        from_filters = _memory_types(filters.pop("memory_type"))
        types = [t for t in types if t in from_filters] if types else from_filters
        if not types:
            return None  # asked for two disjoint sets of types
    total = sum(len(value) if isinstance(value, list) else 1 for value in filters.values())
    if total > MAX_FILTER_VALUES:
        raise InvalidInput(
            f"filters name {total} values in all; at most {MAX_FILTER_VALUES} are allowed"
        )
    conditions = tuple(_condition(field, value) for field, value in filters.items())
    return SearchFilter(namespace, tuple(types), conditions)

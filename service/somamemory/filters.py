"""Search filters: the request's filters, validated into a small backend-neutral tree.

The language (README, "Filters"):

- ``{"field": value}`` means equality, ``{"field": [v1, v2]}`` membership (the shorthand);
- an operator object compares: ``{"field": {"$gt": 3, "$lte": 9}}`` with ``$eq $ne $gt $gte
  $lt $lte`` (one value), ``$in $nin`` (a list), ``$exists`` (a boolean) and ``$not`` (an
  operator object); several operators in one object must all hold;
- ``{"$and": [..]}``, ``{"$or": [..]}`` (lists of filter objects) and ``{"$not": {..}}`` combine
  filters at any depth; the keys of one object must all hold.

Fields: ``memory_type``, ``importance``, ``version``, ``created_at`` and ``updated_at`` (ISO 8601;
a time without an offset is UTC) are the memory's own; any other name is a top-level payload
field. Numbers compare as numbers, times as times, strings by code point; booleans only equal.

A payload field *has a value* when it holds a filterable scalar (:func:`filterable_fields`): a
boolean, a number of magnitude at most 2**53, or a string of at most 1024 characters. Anything
else (absent, null, an object, a list, a longer string) is *missing*. A missing field, or one of
another type than the operand, satisfies no comparison (``$eq $gt $gte $lt $lte $in``);
``$ne``, ``$nin`` and ``$not`` are the exact complements of ``$eq``, ``$in`` and their operand,
so they match it. ``$exists: true`` matches a field that has a value.

Every name and value is checked here (400 naming the path of the offending part, such as
``filters.$and[1].importance.$gt``); each store compiles the resulting :class:`SearchFilter` into
its own query language (``stores/milvus_filter.py``, ``stores/postgres_filter.py``), escaping
or parameterising as that language needs. A new operator becomes a new node type of
:data:`Condition`: the parser here builds it, and every compiler handles it (mypy checks that
none is missed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from .errors import InvalidInput
from .models import MAX_EXACT_INT, MEMORY_TYPES, MemoryType

MAX_FIELD_NAME = 256
MAX_IN_VALUES = 100
# Keys of the top-level filter object, and entries of one $and / $or list.
MAX_FILTERS = 32
# The cost of a search grows with every comparison evaluated per candidate: bound them all.
MAX_FILTER_VALUES = 256
# Operators, fields and $and/$or/$not nodes in one filter, and how deep they nest.
MAX_FILTER_NODES = 128
MAX_FILTER_DEPTH = 8
# Longer string values are not indexed for filtering (the vector stores keep only shorter ones).
MAX_FILTER_STRING = 1024

Scalar = str | int | float | bool
# A filter operand: a payload scalar, or a time (created_at, updated_at), always in UTC.
Value = Scalar | datetime

NUMBER_FIELDS = ("importance", "version")
TIME_FIELDS = ("created_at", "updated_at")
# The memory's own fields; every other field name is a top-level payload field.
RECORD_FIELDS = ("memory_type", *NUMBER_FIELDS, *TIME_FIELDS)

RangeOp = Literal["gt", "gte", "lt", "lte"]
_RANGE_OPS: dict[str, RangeOp] = {"$gt": "gt", "$gte": "gte", "$lt": "lt", "$lte": "lte"}


@dataclass(frozen=True, slots=True)
class Equals:
    """``field`` equals ``value`` (same type)."""

    field: str
    value: Value


@dataclass(frozen=True, slots=True)
class OneOf:
    """``field`` equals one of ``values``."""

    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Compare:
    """``field`` is ordered ``op`` against ``value``: numbers, strings or times, never booleans."""

    field: str
    op: RangeOp
    value: str | int | float | datetime


@dataclass(frozen=True, slots=True)
class Exists:
    """A payload ``field`` has a value (see the module docstring)."""

    field: str


@dataclass(frozen=True, slots=True)
class Not:
    """Exactly the memories ``condition`` does not match."""

    condition: Condition


@dataclass(frozen=True, slots=True)
class AllOf:
    """Every one of ``conditions`` holds."""

    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    """At least one of ``conditions`` holds."""

    conditions: tuple[Condition, ...]


# One node of the filter tree.
Condition = Equals | OneOf | Compare | Exists | Not | AllOf | AnyOf


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Which memories a search may return, validated and free of any query language.

    A memory matches when it is in ``namespace``, its type is one of ``memory_types`` (any type
    when empty), and every one of ``conditions`` holds.
    """

    namespace: str
    memory_types: tuple[MemoryType, ...] = ()
    conditions: tuple[Condition, ...] = ()


def is_filterable(value: Any) -> bool:
    """Whether a payload value can be filtered on: it then *has a value* for every filter."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int | float):
        return math.isfinite(value) and -MAX_EXACT_INT <= value <= MAX_EXACT_INT
    return isinstance(value, str) and len(value) <= MAX_FILTER_STRING


def filterable_fields(payload: dict[str, Any]) -> dict[str, Scalar]:
    """The payload fields a filter can match: top-level booleans, numbers within 2**53 (exact as
    doubles) and short strings. Names starting with ``$`` are operators in the filter language,
    never fields. A vector store keeps these beside each vector and evaluates filters on them."""
    return {
        key: value
        for key, value in payload.items()
        if not key.startswith("$") and is_filterable(value)
    }


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class _Budget:
    """What one filter has spent of its bounds so far."""

    nodes: int = 0
    values: int = 0

    def node(self, path: str) -> None:
        self.nodes += 1
        if self.nodes > MAX_FILTER_NODES:
            raise InvalidInput(
                f"{path}: filters may have at most {MAX_FILTER_NODES} fields and operators in all"
            )

    def spend(self, path: str, count: int) -> None:
        self.values += count
        if self.values > MAX_FILTER_VALUES:
            raise InvalidInput(
                f"{path}: filters name over {MAX_FILTER_VALUES} values in all; "
                f"at most {MAX_FILTER_VALUES} are allowed"
            )


def _shown(value: Any) -> str:
    """A refused value as an error message quotes it: escaped, and cut short."""
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _scalar(path: str, value: Any) -> Scalar:
    """``value`` if a filter may compare a payload field with it, else a 400 saying why."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_EXACT_INT:
            raise InvalidInput(f"{path}: integers beyond 2**53 cannot be matched")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{path}: value must be a finite number")
        return value
    if isinstance(value, str):
        if len(value) > MAX_FILTER_STRING:
            raise InvalidInput(
                f"{path}: strings longer than {MAX_FILTER_STRING} characters "
                "are not indexed for filtering"
            )
        if _has_control(value):
            raise InvalidInput(f"{path}: value contains control characters")
        if not _is_unicode(value):
            raise InvalidInput(f"{path}: value contains a lone surrogate")
        return value
    raise InvalidInput(f"{path}: values must be strings, numbers, booleans or a list of them")


def _time(path: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidInput(f"{path}: a time must be an ISO 8601 string")
    text = _scalar(path, value)
    assert isinstance(text, str)
    try:
        parsed = datetime.fromisoformat(text)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{path}: {_shown(text)} is not an ISO 8601 time") from None


def _value(name: str, path: str, value: Any) -> Value:
    """An equality operand for field ``name``, of the field's type."""
    if name == "memory_type":
        if value not in MEMORY_TYPES or not isinstance(value, str):
            raise InvalidInput(
                f"{path}: memory_type {_shown(value)} is not one of {', '.join(MEMORY_TYPES)}"
            )
        return value
    if name in TIME_FIELDS:
        return _time(path, value)
    scalar = _scalar(path, value)
    if name in NUMBER_FIELDS and (isinstance(scalar, bool) or not isinstance(scalar, int | float)):
        raise InvalidInput(f"{path}: {name} is a number; {_shown(value)} is not one")
    return scalar


def _ordered(name: str, path: str, value: Any) -> str | int | float | datetime:
    """An operand of $gt, $gte, $lt or $lte: a number, a string or (for times) a time."""
    if name == "memory_type":
        raise InvalidInput(f"{path}: memory_type has no order; use $eq, $ne, $in or $nin")
    if isinstance(value, bool):
        raise InvalidInput(f"{path}: booleans have no order; compare numbers, strings or times")
    ordered = _value(name, path, value)
    assert not isinstance(ordered, bool)
    return ordered


def _list(name: str, path: str, value: Any, budget: _Budget) -> tuple[Value, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_IN_VALUES:
        raise InvalidInput(f"{path}: a list needs 1 to {MAX_IN_VALUES} values")
    budget.spend(path, len(value))
    return tuple(_value(name, f"{path}[{i}]", item) for i, item in enumerate(value))


def _name(path: str, key: Any) -> str:
    if (
        not isinstance(key, str)
        or not key
        or len(key) > MAX_FIELD_NAME
        or _has_control(key)
        or not _is_unicode(key)
    ):
        raise InvalidInput(
            f"{path}: filter field names and operators must be 1-{MAX_FIELD_NAME} "
            "printable characters"
        )
    return key


def _joined(conditions: Sequence[Condition]) -> Condition:
    return conditions[0] if len(conditions) == 1 else AllOf(tuple(conditions))


def _operators(name: str, path: str, ops: dict[str, Any], depth: int, budget: _Budget) -> Condition:
    """An operator object on field ``name``: every operator in it must hold."""
    if not ops:
        raise InvalidInput(f"{path}: an operator object needs at least one operator")
    conditions: list[Condition] = []
    for key, operand in ops.items():
        op = _name(path, key)
        at = f"{path}.{op}"
        budget.node(at)
        if op in ("$eq", "$ne"):
            budget.spend(at, 1)
            equals = Equals(name, _value(name, at, operand))
            conditions.append(equals if op == "$eq" else Not(equals))
        elif op in _RANGE_OPS:
            budget.spend(at, 1)
            conditions.append(Compare(name, _RANGE_OPS[op], _ordered(name, at, operand)))
        elif op in ("$in", "$nin"):
            one_of = OneOf(name, _list(name, at, operand, budget))
            conditions.append(one_of if op == "$in" else Not(one_of))
        elif op == "$exists":
            if name in RECORD_FIELDS:
                raise InvalidInput(f"{at}: {name} always exists; $exists is for payload fields")
            if not isinstance(operand, bool):
                raise InvalidInput(f"{at}: $exists takes true or false")
            conditions.append(Exists(name) if operand else Not(Exists(name)))
        elif op == "$not":
            conditions.append(Not(_clause(name, at, operand, depth + 1, budget)))
        else:
            raise InvalidInput(
                f"{at}: unknown operator {op!r}; a field takes $eq, $ne, $gt, $gte, $lt, $lte, "
                "$in, $nin, $exists or $not"
            )
    return _joined(conditions)


def _clause(name: str, path: str, value: Any, depth: int, budget: _Budget) -> Condition:
    """What field ``name`` must satisfy: a value, a list of values or an operator object."""
    if isinstance(value, dict):
        if depth > MAX_FILTER_DEPTH:
            raise InvalidInput(f"{path}: filters may nest at most {MAX_FILTER_DEPTH} levels deep")
        return _operators(name, path, value, depth, budget)
    if isinstance(value, list):
        return OneOf(name, _list(name, path, value, budget))
    budget.spend(path, 1)
    return Equals(name, _value(name, path, value))


def _objects(path: str, value: Any, depth: int, budget: _Budget) -> tuple[Condition, ...]:
    """The operand of $and / $or: a list of filter objects."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_FILTERS:
        raise InvalidInput(f"{path}: takes a list of 1 to {MAX_FILTERS} filter objects")
    return tuple(_object(f"{path}[{i}]", item, depth + 1, budget) for i, item in enumerate(value))


def _object(path: str, value: Any, depth: int, budget: _Budget) -> Condition:
    """A filter object: every key in it (a field or $and / $or / $not) must hold."""
    if depth > MAX_FILTER_DEPTH:
        raise InvalidInput(f"{path}: filters may nest at most {MAX_FILTER_DEPTH} levels deep")
    if not isinstance(value, dict) or not value:
        raise InvalidInput(f"{path}: expected a non-empty filter object")
    conditions: list[Condition] = []
    for key, operand in value.items():
        name = _name(path, key)
        at = f"{path}.{name}"
        budget.node(at)
        if name == "$and":
            conditions.append(AllOf(_objects(at, operand, depth, budget)))
        elif name == "$or":
            conditions.append(AnyOf(_objects(at, operand, depth, budget)))
        elif name == "$not":
            conditions.append(Not(_object(at, operand, depth + 1, budget)))
        elif name.startswith("$"):
            raise InvalidInput(
                f"{at}: unknown operator {name!r}; a filter object takes fields, $and, $or or $not"
            )
        else:
            conditions.append(_clause(name, at, operand, depth + 1, budget))
    return _joined(conditions)


def _memory_types(path: str, value: Any) -> list[MemoryType]:
    types = list(value) if isinstance(value, list | tuple) else [value]
    if not 1 <= len(types) <= MAX_IN_VALUES:
        raise InvalidInput(f"{path}: a list needs 1 to {MAX_IN_VALUES} values")
    for memory_type in types:
        if memory_type not in MEMORY_TYPES or not isinstance(memory_type, str):
            raise InvalidInput(
                f"{path}: memory_type filter {_shown(memory_type)} is not one of "
                f"{', '.join(MEMORY_TYPES)}"
            )
    return types


def parse_filter(
    namespace: str,
    filters: dict[str, Any] | None = None,
    memory_type: str | Sequence[str] | None = None,
) -> SearchFilter | None:
    """The search filter for one namespace plus the caller's filters (400 on bad ones).

    None when nothing can match (``memory_type`` and a top-level ``filters["memory_type"]``
    value or list are disjoint).
    """
    filters = dict(filters or {})
    if len(filters) > MAX_FILTERS:
        raise InvalidInput(f"filters: at most {MAX_FILTERS} filters are allowed")
    types: list[MemoryType] = []
    if memory_type is not None:
        types = _memory_types("memory_type", memory_type)
    if "memory_type" in filters and not isinstance(filters["memory_type"], dict):
        from_filters = _memory_types("filters.memory_type", filters.pop("memory_type"))
        types = [t for t in types if t in from_filters] if types else from_filters
        if not types:
            return None  # asked for two disjoint sets of types
    if not filters:
        return SearchFilter(namespace, tuple(types))
    tree = _object("filters", filters, 1, _Budget())
    conditions = tree.conditions if isinstance(tree, AllOf) and len(filters) > 1 else (tree,)
    return SearchFilter(namespace, tuple(types), conditions)

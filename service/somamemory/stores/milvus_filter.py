"""Search filters compiled into Milvus boolean expressions, every name and value escaped.

What a row keeps for filtering: ``memory_type``, ``importance`` and ``version`` are scalar fields
of the collection; the payload's filterable fields and the memory's times are keys of the
``fields`` JSON (:func:`milvus_fields`). The times go under the reserved keys ``$created_at``
and ``$updated_at`` as integer microseconds since the epoch: a payload field whose name starts
with ``$`` is never filterable (``$`` starts an operator), so no payload field collides with them.
Rows written before the times were kept lack these keys: a filter on ``created_at`` or
``updated_at`` treats such a row's time as missing until the row is written again or
``somamemory reindex`` rewrites it from PostgreSQL.

Milvus evaluates a comparison on a missing JSON key, or on a value of another type, to *null*,
and ``not null`` is null again, so ``not (fields["k"] == 1)`` does not match a row without
``k``. The filter language wants exact complements (``filters.py``), so negations are pushed
down to the leaves here and every negated leaf is written out in full: "missing, or another
type, or the opposite comparison". What is left combines leaves with ``and`` / ``or`` only,
where a null leaf counts as false, as it should.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, assert_never

from ..filters import (
    TIME_FIELDS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Equals,
    Exists,
    Not,
    OneOf,
    RangeOp,
    SearchFilter,
    Value,
    filterable_fields,
)
from ..models import Memory

# Milvus compares JSON booleans as numbers (``true == 1``), so a boolean is stored wrapped in an
# object under this key and compared there: a filter on ``true`` never matches the number 1, nor
# a filter on 1 the boolean true. Payload objects are never filterable, so no stored value
# collides with the wrapper.
BOOLEAN_KEY = "bool"
# The memory's times inside ``fields``, under names no payload field can take.
TIME_KEYS = {"created_at": "$created_at", "updated_at": "$updated_at"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_OPS: dict[RangeOp, str] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_OPPOSITE: dict[RangeOp, str] = {"gt": "<=", "gte": "<", "lt": ">=", "lte": ">"}


def milvus_string(value: str) -> str:
    """A Milvus expression string literal, with quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def epoch_micros(moment: datetime) -> int:
    """A time as integer microseconds since the epoch: exact, and ordered as the times are."""
    return (moment - _EPOCH) // _MICROSECOND


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return milvus_string(value)
    if isinstance(value, datetime):
        return str(epoch_micros(value))
    return str(value) if isinstance(value, int) else repr(float(value))


def milvus_fields(memory: Memory) -> dict[str, Any]:
    """The ``fields`` JSON of a memory's Milvus row: its payload's filterable fields (booleans
    wrapped) and its times."""
    fields: dict[str, Any] = {
        key: {BOOLEAN_KEY: value} if isinstance(value, bool) else value
        for key, value in filterable_fields(memory.payload).items()
    }
    fields[TIME_KEYS["created_at"]] = epoch_micros(memory.created_at)
    fields[TIME_KEYS["updated_at"]] = epoch_micros(memory.updated_at)
    return fields


def _key(field: str) -> str:
    return f"fields[{milvus_string(TIME_KEYS.get(field, field))}]"


def _is_column(field: str) -> bool:
    return field in ("memory_type", "importance", "version")


def _exists(key: str) -> str:
    """``exists`` in parentheses: Milvus before 2.4 reads ``not exists a or b`` as a
    non-boolean operand of ``or`` and refuses it."""
    return f"(exists {key})"


def _missing(key: str) -> str:
    return f"(not {_exists(key)})"


def _other_type(key: str, value: Value) -> str:
    """Holds when the JSON value at ``key`` is missing or of another type than ``value``."""
    is_string = f"{key} >= {milvus_string('')}"
    is_number = f"{key} < 0 or {key} >= 0"
    is_boolean = _exists(f"{key}[{milvus_string(BOOLEAN_KEY)}]")
    if isinstance(value, bool):
        others = [is_string, is_number]
    elif isinstance(value, str):
        others = [is_number, is_boolean]
    else:
        others = [is_string, is_boolean]
    return " or ".join([_missing(key), *others])


def _equals(field: str, value: Value, negated: bool) -> str:
    if _is_column(field):
        return f"{field} {'!=' if negated else '=='} {_literal(value)}"
    key = _key(field)
    if isinstance(value, bool):
        key = f"{key}[{milvus_string(BOOLEAN_KEY)}]"
    if not negated:
        return f"{key} == {_literal(value)}"
    if field in TIME_FIELDS:
        return f"({_missing(key)} or {key} != {_literal(value)})"
    if isinstance(value, bool):  # the wrapper's key exists only on booleans
        return f"({_missing(key)} or {key} != {_literal(value)})"
    return f"({_other_type(key, value)} or {key} != {_literal(value)})"


def _compare(field: str, op: RangeOp, value: Value, negated: bool) -> str:
    if _is_column(field):
        return f"{field} {_OPPOSITE[op] if negated else _OPS[op]} {_literal(value)}"
    key = _key(field)
    if not negated:
        return f"{key} {_OPS[op]} {_literal(value)}"
    others = _missing(key) if field in TIME_FIELDS else _other_type(key, value)
    return f"({others} or {key} {_OPPOSITE[op]} {_literal(value)})"


def _one_of(field: str, values: tuple[Value, ...], negated: bool) -> str:
    if field == "memory_type":
        listed = ", ".join(_literal(value) for value in values)
        return f"memory_type {'not in' if negated else 'in'} [{listed}]"
    options = [_equals(field, value, negated) for value in values]
    joined = (" and " if negated else " or ").join(options)
    return options[0] if len(options) == 1 else f"({joined})"


def _condition(condition: Condition, negated: bool = False) -> str:
    """``condition`` (or its complement) with negations pushed down to the leaves."""
    match condition:
        case Equals(field, value):
            return _equals(field, value, negated)
        case OneOf(field, values):
            return _one_of(field, values, negated)
        case Compare(field, op, value):
            return _compare(field, op, value, negated)
        case Exists(field):
            return _missing(_key(field)) if negated else _exists(_key(field))
        case Not(inner):
            return _condition(inner, not negated)
        case AllOf(conditions) | AnyOf(conditions):
            conjunction = isinstance(condition, AllOf) != negated
            parts = [_condition(part, negated) for part in conditions]
            joined = (" and " if conjunction else " or ").join(parts)
            return parts[0] if len(parts) == 1 else f"({joined})"
        case _:
            assert_never(condition)


def milvus_filter(search_filter: SearchFilter) -> str:
    """The Milvus boolean expression of a search filter.

    Every name and value goes in as an escaped string literal (or a number or boolean written
    here), so no input can change the expression's structure.
    """
    clauses = [f"namespace == {milvus_string(search_filter.namespace)}"]
    if search_filter.memory_types:
        types = ", ".join(milvus_string(t) for t in search_filter.memory_types)
        clauses.append(f"memory_type in [{types}]")
    clauses += [_condition(condition) for condition in search_filter.conditions]
    return " and ".join(clauses)

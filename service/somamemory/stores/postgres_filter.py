"""Search filters compiled into a parameterised SQL condition over the ``memories`` table.

The same meaning as ``milvus_filter.py`` (``filters.py`` defines it; a property-based test keeps
the two in agreement): a payload field is read from the jsonb by type, so ``true`` never equals
``1`` nor ``"1"`` equals ``1``; a number counts only within 2**53 and is compared as a double, as
Milvus compares it; a string counts only up to 1024 characters and orders by code point
(``COLLATE "C"``). Every leaf is true or false, never null (a missing field or one of another
type reads as null and the leaf says ``IS TRUE``), so ``NOT`` is an exact complement.

Every field name and value is a parameter, never text of the statement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, assert_never

from ..filters import (
    MAX_FILTER_STRING,
    NUMBER_FIELDS,
    TIME_FIELDS,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Equals,
    Exists,
    Not,
    OneOf,
    SearchFilter,
    Value,
)
from ..models import MAX_EXACT_INT

_OPS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_TABLE = "memories"
# The SQL type of each kind of operand.
_NUMBER, _TEXT, _BOOLEAN, _TIME = "float8", "text", "boolean", "timestamptz"


def _kind(value: Value) -> str:
    if isinstance(value, bool):
        return _BOOLEAN
    if isinstance(value, datetime):
        return _TIME
    return _TEXT if isinstance(value, str) else _NUMBER


def _payload_value(key: str, kind: str) -> str:
    """The payload field at parameter ``key`` as ``kind``, or NULL when it is missing, of another
    type, or not filterable (a number beyond 2**53, a string over 1024 characters). Nested CASEs:
    a cast runs only on a value already known to be of its type."""
    json = f"({_TABLE}.payload -> {key})"
    if kind == _NUMBER:
        return (
            f"(CASE WHEN jsonb_typeof({json}) = 'number' THEN CASE WHEN "
            f"abs({json}::numeric) <= {MAX_EXACT_INT} THEN {json}::float8 END END)"
        )
    if kind == _TEXT:
        return (
            f"(CASE WHEN jsonb_typeof({json}) = 'string' AND "
            f"length({_TABLE}.payload ->> {key}) <= {MAX_FILTER_STRING} "
            f'THEN ({_TABLE}.payload ->> {key}) COLLATE "C" END)'
        )
    return f"(CASE WHEN jsonb_typeof({json}) = 'boolean' THEN {json}::boolean END)"


class _Compiler:
    """Collects the parameters of one statement, numbered from ``first_param``."""

    def __init__(self, first_param: int) -> None:
        self.first_param = first_param
        self.params: list[Any] = []

    def param(self, value: Any, sql_type: str) -> str:
        if sql_type.startswith(_NUMBER):  # numbers compare as doubles, as in Milvus
            value = [float(v) for v in value] if isinstance(value, list) else float(value)
        self.params.append(value)
        return f"${self.first_param + len(self.params) - 1}::{sql_type}"

    def column(self, field: str, kind: str) -> str:
        """A field's SQL value: a column of the memory, or a typed read of its payload."""
        if field == "memory_type" or field in NUMBER_FIELDS or field in TIME_FIELDS:
            return f"{_TABLE}.{field}"
        return _payload_value(self.param(field, "text"), kind)

    def equals(self, field: str, value: Value) -> str:
        kind = _kind(value)
        return f"({self.column(field, kind)} = {self.param(value, kind)}) IS TRUE"

    def one_of(self, field: str, values: tuple[Value, ...]) -> str:
        by_kind: dict[str, list[Value]] = {}
        for value in values:
            by_kind.setdefault(_kind(value), []).append(value)
        options = [
            f"({self.column(field, kind)} = ANY({self.param(group, kind + '[]')})) IS TRUE"
            for kind, group in by_kind.items()
        ]
        return options[0] if len(options) == 1 else f"({' OR '.join(options)})"

    def condition(self, condition: Condition) -> str:
        match condition:
            case Equals(field, value):
                return self.equals(field, value)
            case OneOf(field, values):
                return self.one_of(field, values)
            case Compare(field, op, value):
                kind = _kind(value)
                column = self.column(field, kind)
                return f"({column} {_OPS[op]} {self.param(value, kind)}) IS TRUE"
            case Exists(field):
                key = self.param(field, "text")
                typed = [_payload_value(key, kind) for kind in (_NUMBER, _TEXT, _BOOLEAN)]
                return "(" + " OR ".join(f"{value} IS NOT NULL" for value in typed) + ")"
            case Not(inner):
                return f"NOT ({self.condition(inner)})"
            case AllOf(conditions) | AnyOf(conditions):
                joiner = " AND " if isinstance(condition, AllOf) else " OR "
                return "(" + joiner.join(self.condition(part) for part in conditions) + ")"
            case _:
                assert_never(condition)


def compile_where(search_filter: SearchFilter, first_param: int) -> tuple[str, list[Any]]:
    """A parameterised condition over ``memories`` admitting exactly what the filter admits.

    Returns the condition (without the ``WHERE`` keyword; columns qualified as ``memories.``)
    and its parameters, numbered ``$first_param``, ``$first_param + 1``, ... in the list's order.
    """
    compiler = _Compiler(first_param)
    clauses = [f"{_TABLE}.namespace = {compiler.param(search_filter.namespace, 'text')}"]
    if search_filter.memory_types:
        types = compiler.param(list(search_filter.memory_types), "text[]")
        clauses.append(f"{_TABLE}.memory_type = ANY({types})")
    clauses += [compiler.condition(condition) for condition in search_filter.conditions]
    return " AND ".join(clauses), compiler.params

"""Search filters compiled into Milvus boolean expressions, every name and value escaped."""

from __future__ import annotations

from typing import Any, assert_never

from ..filters import Condition, Equals, OneOf, Scalar, SearchFilter, filterable_fields

# Milvus compares JSON booleans as numbers (``true == 1``), so a boolean is stored wrapped in an
# object under this key and compared there: a filter on ``true`` never matches the number 1, nor
# a filter on 1 the boolean true. Payload objects are never filterable, so no stored value
# collides with the wrapper.
BOOLEAN_KEY = "bool"


def milvus_string(value: str) -> str:
    """A Milvus expression string literal, with quotes and backslashes escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _literal(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return milvus_string(value)
    return str(value) if isinstance(value, int) else repr(value)


def milvus_fields(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload's filterable fields as the ``fields`` JSON of a Milvus row (booleans wrapped)."""
    return {
        key: {BOOLEAN_KEY: value} if isinstance(value, bool) else value
        for key, value in filterable_fields(payload).items()
    }


def _condition(condition: Condition) -> str:
    match condition:
        case Equals(field, bool(value)):
            return (
                f"fields[{milvus_string(field)}][{milvus_string(BOOLEAN_KEY)}] == {_literal(value)}"
            )
        case Equals(field, value):
            return f"fields[{milvus_string(field)}] == {_literal(value)}"
        case OneOf(field, values):
            options = [_condition(Equals(field, value)) for value in values]
            return options[0] if len(options) == 1 else f"({' or '.join(options)})"
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

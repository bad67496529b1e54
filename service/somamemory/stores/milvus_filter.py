"""Search filters compiled into Milvus boolean expressions, every name and value escaped."""

from __future__ import annotations

from typing import assert_never

from ..filters import Condition, Equals, OneOf, Scalar, SearchFilter


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


def _condition(condition: Condition) -> str:
    match condition:
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

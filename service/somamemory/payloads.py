"""Checks a payload must pass before any store sees it."""

from __future__ import annotations

import json
from typing import Any

from .errors import InvalidInput, PayloadTooLarge

MAX_DEPTH = 64


def _check_strings(value: Any, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"payload is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput("payload strings may not contain the NUL character (\\u0000)")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)


def validate_payload(payload: dict[str, Any], max_bytes: int) -> int:
    """Refuse what PostgreSQL's JSONB or the size limit would refuse; return the size in bytes."""
    try:
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError as exc:
        raise InvalidInput("payload contains NaN or Infinity, which JSON does not allow") from exc
    try:
        size = len(text.encode())  # UTF-8 bytes, as stored: é counts 2, not 6 (\u00e9)
    except UnicodeEncodeError as exc:
        raise InvalidInput(
            "payload contains a lone surrogate (e.g. \\ud800), which is not valid Unicode"
        ) from exc
    if size > max_bytes:
        raise PayloadTooLarge(
            f"payload is {size} bytes; the limit is {max_bytes} (SOMA_MAX_PAYLOAD_BYTES)"
        )
    _check_strings(payload)
    return size

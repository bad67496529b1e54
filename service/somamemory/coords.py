"""Coordinates: comma-separated finite floats, normalised to one canonical key.

``"1000,1001"`` and ``" 1000.0 , 1001.0"`` name the same memory: ``"1000.0,1001.0"``.
"""

from __future__ import annotations

import math
import re

from .errors import InvalidCoordinate

MAX_DIMENSIONS = 64
MAX_COORD_CHARS = 4096
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")  # ASCII only


def parse_coord(text: str) -> tuple[float, ...]:
    """Parse a coordinate, refusing empty parts, non-numbers, NaN, infinity and > 64 parts."""
    if len(text) > MAX_COORD_CHARS:
        raise InvalidCoordinate(f"coordinate is longer than {MAX_COORD_CHARS} characters")
    parts = text.split(",")
    if len(parts) > MAX_DIMENSIONS:
        raise InvalidCoordinate(
            f"coordinate has {len(parts)} parts; at most {MAX_DIMENSIONS} are allowed"
        )
    values: list[float] = []
    for index, raw in enumerate(parts):
        part = raw.strip()
        if not part:
            raise InvalidCoordinate(
                f"coordinate part {index + 1} is empty; expected comma-separated numbers "
                "such as '0.1,0.2,0.3'"
            )
        if not _NUMBER.fullmatch(part):
            raise InvalidCoordinate(
                f"coordinate part {index + 1} ({part[:32]!r}) is not a decimal number"
            )
        value = float(part)
        if not math.isfinite(value):
            raise InvalidCoordinate(f"coordinate part {index + 1} ({part[:32]!r}) is not finite")
        values.append(value + 0.0)  # -0.0 -> 0.0
    return tuple(values)


def format_coord(values: tuple[float, ...]) -> str:
    """The canonical text of a parsed coordinate (shortest round-tripping float repr)."""
    return ",".join(repr(v + 0.0) for v in values)


def normalize_coord(text: str) -> str:
    """Parse and re-format: the canonical key of a coordinate."""
    return format_coord(parse_coord(text))

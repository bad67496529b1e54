"""Replacing one function inside milvus-lite, once per process, on the versions it was checked on.

The ``milvus_lite_*`` modules each mend one behaviour of milvus-lite 3.2 by wrapping or
replacing a function of it. They share this: an unchecked version keeps lite's own code (and
says so in the log), a second install is a no-op, and each replacement gets the original to
call or defer to.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

CHECKED_VERSIONS = ("3.2.",)
_lock = threading.Lock()
_patched: dict[tuple[int, str, str], Any] = {}


def lite_version() -> str | None:
    """The installed milvus-lite's version, or None when it is not installed."""
    try:
        import milvus_lite
    except ImportError:
        return None
    return str(milvus_lite.__version__)


def patch(
    owner: Any,
    name: str,
    replacement: Callable[[Callable[..., Any]], Any],
    *,
    otherwise: str,
) -> Callable[..., Any] | None:
    """Set ``owner.name`` to ``replacement(original)`` once per replacement (several may wrap
    one function, each the one before); the original (None when lite's own stays: another
    version, or no such attribute, logged as ``otherwise``)."""
    key = (id(owner), name, f"{replacement.__module__}.{replacement.__qualname__}")
    with _lock:
        if key in _patched:
            return _patched[key]  # type: ignore[no-any-return]
        original = getattr(owner, name, None)
        version = lite_version()
        if original is None or version is None or not version.startswith(CHECKED_VERSIONS):
            log.warning("milvus-lite %s: %s", version, otherwise)
            return None
        setattr(owner, name, replacement(original))
        _patched[key] = original
        return original  # type: ignore[no-any-return]

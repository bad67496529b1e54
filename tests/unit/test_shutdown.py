"""Closing the backends: every closer runs, last opened first, and a failure is an error."""

from __future__ import annotations

import logging

import pytest

from somamemory.backends import close_all
from somamemory.errors import ShutdownIncomplete


async def test_a_failing_closer_does_not_stop_the_others_and_fails_the_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    closed: list[str] = []

    async def close(name: str) -> None:
        closed.append(name)

    async def fail() -> None:
        closed.append("postgres")
        raise RuntimeError("postmaster still running")

    closers = [lambda: close("embedder"), fail, lambda: close("milvus")]
    with pytest.raises(ShutdownIncomplete, match="1 backend"):
        await close_all(closers)
    assert closed == ["milvus", "postgres", "embedder"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["closing a backend failed"]

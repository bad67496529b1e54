"""Progress of a long command: a bar with rate and ETA on a terminal, plain lines otherwise.

Always on stderr, so ``somamemory export -`` can write the data to stdout.
"""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress
from rich.text import Text

PLAIN_EVERY_SECONDS = 5.0


class Progress(Protocol):
    def advance(self, count: int) -> None: ...

    def __enter__(self) -> Progress: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...


class PlainProgress:
    """A line every few seconds and one at the end: ``import: 12000/100000 memories, 3400/s``."""

    def __init__(self, label: str, total: int | None, stream: IO[str]) -> None:
        self.label, self.total, self.stream = label, total, stream
        self.done = 0
        self._start = self._last = time.monotonic()

    def __enter__(self) -> PlainProgress:
        return self

    def advance(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if now - self._last >= PLAIN_EVERY_SECONDS:
            self._last = now
            self._print(now)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._print(time.monotonic(), final=kind is None)

    def _print(self, now: float, final: bool = False) -> None:
        elapsed = max(now - self._start, 1e-9)
        rate = self.done / elapsed
        of = f"/{self.total}" if self.total is not None else ""
        line = f"{self.label}: {self.done}{of} memories, {rate:.0f}/s"
        if final:
            line += f", done in {elapsed:.1f}s"
        elif self.total and rate > 0:
            line += f", ETA {max(self.total - self.done, 0) / rate:.0f}s"
        print(line, file=self.stream, flush=True)


class RateColumn(ProgressColumn):
    """Memories per second, thousands separated."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} memories/s" if speed else "- memories/s")


class BarProgress:
    """rich's progress bar, with the count, rate and time left."""

    def __init__(self, label: str, total: int | None, stream: IO[str]) -> None:
        self._bar = RichProgress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
        )
        self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> BarProgress:
        self._bar.start()
        return self

    def advance(self, count: int) -> None:
        self._bar.advance(self._task, count)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._bar.stop()


def progress(label: str, total: int | None, stream: IO[str] | None = None) -> Progress:
    """A bar when ``stream`` (stderr by default) is a terminal, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    if out.isatty():
        return BarProgress(label, total, out)
    return PlainProgress(label, total, out)

"""Waits without waiting: what the retry loop asked to sleep, on a fake clock."""

from __future__ import annotations


class Sleeps:
    """An injected sleep that records each wait and moves a fake clock instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.now = 0.0

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now

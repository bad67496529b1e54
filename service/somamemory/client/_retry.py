"""When to try a request again, and how long to wait first.

Retried: 503 (a backend is down), 429 (rate limited) and failures to reach the server or to
read its answer. Never retried: any other status: a 4xx will not change by asking again, and a
500 is a bug to report, not a state to wait out. Waits grow exponentially with full jitter
(uniform between zero and the cap, so many clients do not retry in step); a ``Retry-After``
header, in seconds or as an HTTP date, is honoured as the server's own wait. Attempts and the
total time are both bounded: a wait that would end past the time budget is not started.

Retrying writes is safe: every write is an upsert of a whole memory (or a delete), so a second
attempt leaves the same content. The one visible trace: when an attempt was stored but its answer
was lost, the retry records one more version with identical content.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import httpx

# timeouts, refused or reset connections, a server that closed the connection mid-answer
RETRYABLE_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry 503, 429 and connection failures.

    ``max_attempts`` counts the first try (1 = never retry); ``total_seconds`` bounds the time
    from the first try to the start of the last; ``random`` draws the jitter (in [0, 1)).
    """

    max_attempts: int = 5
    initial_delay: float = 0.25
    max_delay: float = 8.0
    total_seconds: float = 30.0
    retry_statuses: frozenset[int] = frozenset({429, 503})
    random: Callable[[], float] = field(default=random.random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts counts the first try: at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.total_seconds < 0:
            raise ValueError("delays and total_seconds cannot be negative")

    def backoff(self, retry: int) -> float:
        """The wait before retry number ``retry`` (0 for the first): full jitter under the cap."""
        cap = min(self.max_delay, self.initial_delay * 2.0**retry)
        return cap * self.random()


NO_RETRY = RetryPolicy(max_attempts=1)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or HTTP date); None if absent.

    ``now`` is the wall-clock time (``time.time()``) an HTTP date is measured from.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if moment.tzinfo is None:  # RFC 9110 dates are GMT
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)


class Attempts:
    """The retry state of one call: the wait before the next attempt, or None to stop."""

    def __init__(self, policy: RetryPolicy, clock: Callable[[], float]) -> None:
        self.policy = policy
        self.clock = clock
        self.started = clock()
        self.made = 1  # the first attempt is under way

    def after_status(self, status: int, retry_after: float | None) -> float | None:
        """After an answer: a wait if ``status`` is worth retrying and the budget allows."""
        if status not in self.policy.retry_statuses:
            return None
        return self._next(retry_after)

    def after_error(self, error: Exception) -> float | None:
        """After a transport failure: a wait if it is worth retrying and the budget allows."""
        if not isinstance(error, RETRYABLE_ERRORS):
            return None
        return self._next(None)

    def _next(self, retry_after: float | None) -> float | None:
        if self.made >= self.policy.max_attempts:
            return None
        delay = self.policy.backoff(self.made - 1) if retry_after is None else retry_after
        if self.clock() - self.started + delay > self.policy.total_seconds:
            return None
        self.made += 1
        return delay

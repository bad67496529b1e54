"""Standard five-field cron schedules (minute hour day-of-month month day-of-week), in UTC.

Fields take ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, and lists of those;
day-of-week takes 0-7 (0 and 7 are Sunday). As in cron, when both day fields are restricted a
day matching either one runs. ``@hourly``, ``@daily``, ``@weekly``, ``@monthly`` and
``@yearly`` are shorthands. No dependency: the operator image stays small.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# (name, lowest, highest) of each field
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12))
_PART = re.compile(r"^(\*|\d+(?:-\d+)?)(?:/(\d+))?$")
# what the CRD admits (the parser says exactly what is wrong with the rest)
PATTERN = r"^(@(hourly|daily|midnight|weekly|monthly|yearly|annually)|(\S+\s+){4}\S+)$"
_MAX_STEPS = 400_000  # minutes, hours and days tried before a schedule is declared never due


class CronError(ValueError):
    """A schedule that is not a cron expression; the message says which field and why."""


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        found = _PART.match(part)
        if not found:
            raise CronError(f"{name} field {text!r}: {part!r} is not *, n, a-b or a step /n")
        span, step = found[1], int(found[2] or 1)
        if span == "*":
            first, last = low, high
        else:
            start, _, end = span.partition("-")
            first, last = int(start), int(end or start)
            if found[2] and not end:
                last = high  # "5/15": from 5 to the end, as cron reads it
        if not low <= first <= last <= high or step < 1:
            raise CronError(f"{name} field {text!r}: {part!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A parsed schedule."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def _day_matches(self, when: datetime.datetime) -> bool:
        in_month = when.day in self.days
        in_week = (when.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, when: datetime.datetime) -> datetime.datetime:
        """The first scheduled minute strictly after ``when`` (an aware UTC time)."""
        at = when.astimezone(datetime.UTC).replace(second=0, microsecond=0)
        at += datetime.timedelta(minutes=1)
        for _ in range(_MAX_STEPS):
            if at.year > when.year + 9:  # 29 February comes within 8 years
                break
            if at.month not in self.months:
                year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
                at = at.replace(year=year, month=month, day=1, hour=0, minute=0)
            elif not self._day_matches(at):
                at = (at + datetime.timedelta(days=1)).replace(hour=0, minute=0)
            elif at.hour not in self.hours:
                at = (at + datetime.timedelta(hours=1)).replace(minute=0)
            elif at.minute not in self.minutes:
                at += datetime.timedelta(minutes=1)
            else:
                return at
        raise CronError("the schedule never comes (e.g. 30 February)")

    def last_due(
        self, since: datetime.datetime, now: datetime.datetime
    ) -> datetime.datetime | None:
        """The latest scheduled minute in (``since``, ``now``], or None: missed runs count once."""
        due = None
        at = self.next_after(max(since, now - datetime.timedelta(days=400)))
        while at <= now:
            due = at
            at = self.next_after(at)
        return due


def parse(expression: str) -> Cron:
    """Parse a cron expression or raise :class:`CronError`."""
    text = MACROS.get(expression.strip(), expression.strip())
    fields = text.split()
    if len(fields) != 5:
        raise CronError(
            f"{expression!r} is not a cron schedule: it needs 5 fields (minute hour "
            "day-of-month month day-of-week) or one of " + ", ".join(sorted(MACROS))
        )
    minutes, hours, days, months = (
        _field(fields[i], name, low, high) for i, (name, low, high) in enumerate(_FIELDS)
    )
    weekdays = frozenset(d % 7 for d in _field(fields[4], "day of week", 0, 7))
    return Cron(minutes, hours, days, months, weekdays, fields[2] == "*", fields[4] == "*")

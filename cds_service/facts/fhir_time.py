"""FHIR date, dateTime and instant values as UTC intervals.

A FHIR dateTime may be partial ("2026", "2026-03", "2026-03-10") or a full time with a zone. A
partial value is an interval, not an instant: we keep its earliest and latest instants so that a rule
can be conservative (e.g. a weight dated only by day is treated as taken at the start of that day when
checking it is recent). A time without a zone is invalid FHIR and is not guessed: it yields None.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime
from typing import NamedTuple

_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class FhirTime(NamedTuple):
    """A (possibly partial) time as its earliest and latest instant (a NamedTuple: cheap to build)."""

    earliest: datetime
    latest: datetime

    @property
    def is_instant(self) -> bool:
        return self.earliest == self.latest


def parse_fhir_time(value: str | None) -> FhirTime | None:
    if not value:
        return None
    if len(value) > 10:
        return _instant(value)
    partial = _PARTIAL.match(value)
    if partial:
        return _partial_interval(partial)
    return None


def _instant(value: str) -> FhirTime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:  # e.g. 9999-12-31T23:00:00-05:00 is after the last instant Python can hold
        return None
    return FhirTime(moment, moment)


def _partial_interval(match: re.Match[str]) -> FhirTime | None:
    year = int(match.group(1))
    month = int(match.group(2)) if match.group(2) else None
    day = int(match.group(3)) if match.group(3) else None
    try:
        if month is None:
            start, end = date(year, 1, 1), date(year, 12, 31)
        elif day is None:
            start, end = date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1])
        else:
            start = end = date(year, month, day)
    except ValueError:
        return None
    first = datetime(start.year, start.month, start.day, tzinfo=UTC)
    # The last microsecond of the last day, built directly: adding a day to 9999-12-31 would overflow.
    last = datetime(end.year, end.month, end.day, 23, 59, 59, 999_999, tzinfo=UTC)
    return FhirTime(first, last)


def parse_birth_date(value: str | None) -> tuple[date, date] | None:
    """Earliest and latest possible birth date of a (possibly partial) FHIR date."""
    interval = parse_fhir_time(value)
    if interval is None:
        return None
    return interval.earliest.date(), interval.latest.date()


def completed_years(born: date, on: date) -> int:
    years = on.year - born.year
    if (on.month, on.day) < (born.month, born.day):
        years -= 1
    return years

"""Recurring time intervals with Alertmanager's ``time_intervals`` semantics, evaluated purely.

A named :class:`TimeInterval` holds a list of :class:`TimeIntervalSpec`; an instant is in the
interval when it is in *any* spec. An instant is in a spec when, for every field whose list is
non-empty, at least one entry of that list matches; an empty (or omitted) list matches anything,
so the empty spec ``{}`` contains every instant and an interval with no specs contains none.

Every field is judged on the wall clock of the spec's ``location`` (an IANA zone, default UTC):

- ``times``: ``start_time``/``end_time`` as ``HH:MM`` from ``00:00`` to ``23:59``, and ``24:00``
  for the end of the day; the start is inclusive, the end exclusive, and a range cannot cross
  midnight (write two ranges).
- ``weekdays``: names, case-insensitive, or inclusive ranges ``monday:friday``. The week runs
  sunday to saturday, so ``saturday:sunday`` is rejected; list the days instead.
- ``days_of_month``: ``1``..``31`` or ``-31``..``-1`` counted from the month's end (``-1`` is the
  last day), or inclusive ranges such as ``1:5`` or ``-3:-1``. A negative start needs a negative
  end. Ranges are checked against a 28-day month when loaded, and days a short month lacks never
  match (in a 30-day month both ``31`` and ``-31`` match nothing).
- ``months``: names, case-insensitive, or ``1``..``12``, or inclusive ranges ``january:march``.
- ``years``: ``2026`` or inclusive ranges ``2025:2027``.

Across a DST change the wall clock decides: on the spring-forward day the skipped hour matches
nothing, and on the fall-back day the repeated hour matches both times it occurs.

Where fireline is stricter than Alertmanager: month numbers must be 1..12 and years 1..9999
(Alertmanager takes any integer), and ``location: Local`` is refused because the host's zone
would make evaluation depend on the machine.

Every string is parsed when the model is validated, so a bad config fails at load with the field
and value named, never during an incident. Models keep the strings as written, so they round-trip
through JSON in Temporal history unchanged.

Workflows must import this module (and ``workflows.severity``) inside
``workflow.unsafe.imports_passed_through()``, as they import the contracts: re-imported inside
Temporal's sandbox, ``ZoneInfo(...)`` returns a restricted proxy that ``datetime.astimezone``
rejects, so evaluating any spec would raise ``TypeError`` (seen with temporalio 1.35).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

__all__ = ["TimeInterval", "TimeIntervalSpec", "TimeRange", "contains", "first_match"]

# Index is Alertmanager's weekday number, which starts the week on Sunday.
_WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_TIME_OF_DAY = re.compile(r"(?:[01][0-9]|2[0-3]):[0-5][0-9]|24:00")
_INTEGER = re.compile(r"-?[0-9]+")
# Negative days are checked against the shortest month so a range valid at load is never
# inverted in some month at evaluation time.
_SHORTEST_MONTH = 28

_Range = tuple[int, int]
_Member = Callable[[str], int | None]


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware, got naive {at.isoformat()}")


def _minute_of_day(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def _weekday(text: str) -> int | None:
    name = text.lower()
    return _WEEKDAYS.index(name) if name in _WEEKDAYS else None


def _month(text: str) -> int | None:
    name = text.lower()
    if name in _MONTHS:
        return _MONTHS.index(name) + 1
    if _INTEGER.fullmatch(text) and 1 <= int(text) <= 12:
        return int(text)
    return None


def _day_of_month(text: str) -> int | None:
    if _INTEGER.fullmatch(text) and 1 <= abs(int(text)) <= 31:
        return int(text)
    return None


def _year(text: str) -> int | None:
    if _INTEGER.fullmatch(text) and 1 <= int(text) <= 9999:
        return int(text)
    return None


def _parse_range(field: str, item: str, member: _Member, kind: str) -> _Range:
    parts = item.split(":")
    if len(parts) > 2:
        raise ValueError(f"{field}: {item!r} is not a single value or a 'start:end' range")
    bounds: list[int] = []
    for part in parts:
        value = member(part)
        if value is None:
            where = f" in {item!r}" if len(parts) > 1 else ""
            raise ValueError(f"{field}: {part!r} is not {kind}{where}")
        bounds.append(value)
    return bounds[0], bounds[-1]


def _parse_weekdays(items: Sequence[str]) -> tuple[_Range, ...]:
    ranges = tuple(_parse_range("weekdays", i, _weekday, "a weekday") for i in items)
    for item, (begin, end) in zip(items, ranges, strict=True):
        if begin > end:
            raise ValueError(
                f"weekdays: {item!r} ends before it starts (a week runs sunday to saturday)"
            )
    return ranges


def _parse_months(items: Sequence[str]) -> tuple[_Range, ...]:
    kind = "a month (january to december, or 1 to 12)"
    ranges = tuple(_parse_range("months", i, _month, kind) for i in items)
    for item, (begin, end) in zip(items, ranges, strict=True):
        if begin > end:
            raise ValueError(
                f"months: {item!r} ends before it starts (a year runs january to december)"
            )
    return ranges


def _parse_years(items: Sequence[str]) -> tuple[_Range, ...]:
    ranges = tuple(_parse_range("years", i, _year, "a year (1 to 9999)") for i in items)
    for item, (begin, end) in zip(items, ranges, strict=True):
        if begin > end:
            raise ValueError(f"years: {item!r} ends before it starts")
    return ranges


def _parse_days_of_month(items: Sequence[str]) -> tuple[_Range, ...]:
    kind = "a day of the month (1 to 31, or -31 to -1 counting back from the last day)"
    ranges = tuple(_parse_range("days_of_month", i, _day_of_month, kind) for i in items)
    for item, (begin, end) in zip(items, ranges, strict=True):
        if begin < 0 < end:
            raise ValueError(
                f"days_of_month: {item!r} has a negative start, so its end must be negative too"
            )
        if _resolve_day(begin, _SHORTEST_MONTH) > _resolve_day(end, _SHORTEST_MONTH):
            raise ValueError(f"days_of_month: {item!r} ends before it starts in a 28-day month")
    return ranges


def _resolve_day(day: int, days_in_month: int) -> int:
    return day if day > 0 else days_in_month + day + 1


def _any_in(ranges: tuple[_Range, ...], value: int) -> bool:
    return not ranges or any(begin <= value <= end for begin, end in ranges)


class TimeRange(BaseModel):
    """A span of the day from ``start_time`` (inclusive) to ``end_time`` (exclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_time: str
    end_time: str

    @field_validator("start_time", "end_time")
    @classmethod
    def _check_time_of_day(cls, value: str, info: ValidationInfo) -> str:
        if not _TIME_OF_DAY.fullmatch(value):
            raise ValueError(
                f"{info.field_name}: {value!r} is not a time of day as HH:MM (00:00 to 24:00)"
            )
        return value

    @model_validator(mode="after")
    def _check_order(self) -> TimeRange:
        if self.start_minute >= self.end_minute:
            raise ValueError(
                f"end_time {self.end_time!r} is not after start_time {self.start_time!r}"
                " (a range cannot cross midnight; split it in two)"
            )
        return self

    @property
    def start_minute(self) -> int:
        """Minutes from midnight at which the range starts."""
        return _minute_of_day(self.start_time)

    @property
    def end_minute(self) -> int:
        """Minutes from midnight at which the range ends (exclusive)."""
        return _minute_of_day(self.end_time)


class TimeIntervalSpec(BaseModel):
    """One recurring window; every non-empty field must match, empty fields match anything."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    times: list[TimeRange] = []
    weekdays: list[str] = []
    days_of_month: list[str] = []
    months: list[str] = []
    years: list[str] = []
    location: str = "UTC"

    _weekdays: tuple[_Range, ...] = PrivateAttr(default=())
    _days_of_month: tuple[_Range, ...] = PrivateAttr(default=())
    _months: tuple[_Range, ...] = PrivateAttr(default=())
    _years: tuple[_Range, ...] = PrivateAttr(default=())
    _zone: tzinfo = PrivateAttr(default=UTC)

    @field_validator("weekdays")
    @classmethod
    def _check_weekdays(cls, value: list[str]) -> list[str]:
        _parse_weekdays(value)
        return value

    @field_validator("days_of_month")
    @classmethod
    def _check_days_of_month(cls, value: list[str]) -> list[str]:
        _parse_days_of_month(value)
        return value

    @field_validator("months")
    @classmethod
    def _check_months(cls, value: list[str]) -> list[str]:
        _parse_months(value)
        return value

    @field_validator("years")
    @classmethod
    def _check_years(cls, value: list[str]) -> list[str]:
        _parse_years(value)
        return value

    @field_validator("location")
    @classmethod
    def _check_location(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"location: {value!r} is not an IANA time zone") from None
        return value

    def model_post_init(self, context: Any, /) -> None:
        """Cache the parsed fields; validation has already proved they parse."""
        self._weekdays = _parse_weekdays(self.weekdays)
        self._days_of_month = _parse_days_of_month(self.days_of_month)
        self._months = _parse_months(self.months)
        self._years = _parse_years(self.years)
        self._zone = ZoneInfo(self.location)

    def contains(self, at: datetime) -> bool:
        """Return whether the timezone-aware instant ``at`` falls in this spec."""
        _require_aware(at)
        local = at.astimezone(self._zone)
        minute = local.hour * 60 + local.minute
        in_times = not self.times or any(
            r.start_minute <= minute < r.end_minute for r in self.times
        )
        return (
            in_times
            and _any_in(self._weekdays, (local.weekday() + 1) % 7)
            and self._in_days_of_month(local)
            and _any_in(self._months, local.month)
            and _any_in(self._years, local.year)
        )

    def _in_days_of_month(self, local: datetime) -> bool:
        if not self._days_of_month:
            return True
        days = calendar.monthrange(local.year, local.month)[1]
        return any(
            _resolve_day(begin, days) <= local.day <= _resolve_day(end, days)
            for begin, end in self._days_of_month
        )


class TimeInterval(BaseModel):
    """A named set of specs, like an entry of Alertmanager's top-level ``time_intervals``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    time_intervals: list[TimeIntervalSpec]


def first_match(interval: TimeInterval, at: datetime) -> TimeIntervalSpec | None:
    """Return the first spec of ``interval`` that contains ``at``, or None."""
    _require_aware(at)
    return next((spec for spec in interval.time_intervals if spec.contains(at)), None)


def contains(interval: TimeInterval, at: datetime) -> bool:
    """Return whether ``at`` falls in any spec of ``interval``."""
    return first_match(interval, at) is not None

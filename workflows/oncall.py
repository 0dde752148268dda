"""On-call schedules: who is on call at an instant, as a pure function of (schedule, time).

Modelled on PagerDuty's layered schedules, so the rules are the ones its users already know:

- A layer rotates its ``users`` in order, one turn each, from its first handoff (PagerDuty's
  ``rotation_virtual_start``). Nobody is on call on a layer before its first handoff.
- Daily and weekly turns, and custom turns of a whole number of days, hand off at the same
  *local* wall-clock time in the schedule's zone: 09:00 every Monday stays 09:00 across a DST
  change, so that week's turn lasts 167 h or 169 h (a daily turn 23 h or 25 h).
- Custom turns of any other length (``12h``, ``36h``) are fixed elapsed time, so their handoffs
  move by an hour on the wall clock when the clocks change (08:00/20:00 become 09:00/21:00).
- A handoff at a local time that does not exist (02:30 on spring-forward day) moves later by
  the length of the gap (03:30); one that occurs twice (01:30 on fall-back day) is the first
  occurrence. This is PEP 495's ``fold=0`` reading, the same as RFC 5545's rule.
- Restrictions (PagerDuty's ``daily_restriction`` / ``weekly_restriction``) are local wall-clock
  windows: a start ``HH:MM`` plus a duration counted on the wall clock, so ``19:00`` for ``12h``
  always ends at 07:00 local. Outside its windows a layer has nobody on call, so a lower layer
  shows through. The rotation keeps advancing through the gaps, as PagerDuty's does (turns are
  counted by time, not by time on duty): a turn that falls wholly outside the windows is lost.
- Layers listed later take precedence where they have someone on call (PagerDuty: "the lowest
  layer always takes precedence ... the last layer essentially acts as an override").
  Overrides beat every layer; where overrides overlap, the one listed last wins, so appending
  an override (what :func:`with_override` does) always takes effect.

Every instant this module returns is in UTC: Python compares and subtracts datetimes that share
a ``tzinfo`` by their wall-clock fields, ignoring ``fold``, so ``end - start`` on zone-local
values would call a 23 h shift 24 h. :func:`format_shifts_table` converts for display.

Used inside the Temporal workflow sandbox: stdlib and pydantic only, no clock, no
randomness, and no I/O beyond ``zoneinfo.ZoneInfo(name)``. Import it passed through (as
``workflows.contracts`` is): a module re-imported inside the sandbox gets a restricted proxy
from ``ZoneInfo(name)``, which ``datetime`` refuses as a tzinfo.

Errors::

    pydantic.ValidationError     a bad schedule, rejected when loaded; the error names the field
    OnCallError (ValueError)     a bad argument to a function here
     ├── NaiveDatetimeError      a time without a zone
     └── EmptyWindowError        a window whose end is not after its start
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from workflows.durations import Duration

__all__ = [
    "OVERRIDE_SOURCE",
    "EmptyWindowError",
    "Layer",
    "NaiveDatetimeError",
    "OnCallError",
    "Override",
    "Restriction",
    "Schedule",
    "Shift",
    "final_shifts",
    "format_shifts_table",
    "layer_shifts",
    "on_call_at",
    "referenced_users",
    "swap_shifts",
    "with_override",
]

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
# Index is ``date.weekday()``.
_WEEKDAYS: tuple[Weekday, ...] = (
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
)
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_DAY = timedelta(days=1)
_WEEK = timedelta(days=7)
OVERRIDE_SOURCE = "override"
# on_call_at widens its search until the covering shift ends inside it, up to this far either
# side: a one-person layer never hands off, so its shift would otherwise be endless.
_FIRST_LOOK = timedelta(days=8)
_HORIZON = timedelta(days=366)


class OnCallError(ValueError):
    """A bad argument to an on-call function."""


class NaiveDatetimeError(OnCallError):
    """A datetime without a time zone, which cannot name an instant."""


class EmptyWindowError(OnCallError):
    """A window whose end is not after its start."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_hhmm(value: str) -> time:
    match = _HHMM.fullmatch(value)
    if match is None:
        raise ValueError(f"{value!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return time(int(match[1]), int(match[2]))


class Restriction(_Frozen):
    """A local wall-clock window, daily or weekly, outside which a layer has nobody on call."""

    kind: Literal["daily", "weekly"]
    start: str
    duration: Duration
    start_day: Weekday | None = Field(default=None, validate_default=True)

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        _parse_hhmm(value)
        return value

    @field_validator("duration")
    @classmethod
    def _check_duration(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        weekly = info.data.get("kind") == "weekly"
        limit, limit_text = (_WEEK, "7d") if weekly else (_DAY, "24h")
        if not timedelta(0) < value <= limit:
            raise ValueError(f"must be more than 0 and at most {limit_text}, got {value}")
        return value

    @field_validator("start_day")
    @classmethod
    def _check_start_day(cls, value: Weekday | None, info: ValidationInfo) -> Weekday | None:
        kind = info.data.get("kind")
        if kind == "weekly" and value is None:
            raise ValueError("a weekly restriction needs start_day (monday to sunday)")
        if kind == "daily" and value is not None:
            raise ValueError("only a weekly restriction takes start_day")
        return value


class Layer(_Frozen):
    """One rotation of users through turns of equal length, optionally restricted."""

    name: str = Field(min_length=1)
    # Handles in rotation order; the same handle may appear more than once.
    users: list[str]
    rotation: Literal["daily", "weekly", "custom"]
    # Custom rotations only: a whole number of days follows the wall clock, else elapsed time.
    turn_length: Duration | None = Field(default=None, validate_default=True)
    # The first handoff (PagerDuty's rotation_virtual_start), read on the schedule's wall clock.
    start: AwareDatetime
    # "HH:MM": when given, the first handoff is at this time on start's local date instead.
    handoff_time: str | None = None
    # When non-empty, the layer is on call only inside these windows.
    restrictions: list[Restriction] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _check_users(cls, value: list[str], info: ValidationInfo) -> list[str]:
        name = info.data.get("name", "?")
        if not value:
            raise ValueError(f"layer {name!r} has no users; list at least one handle")
        if any(not handle.strip() for handle in value):
            raise ValueError(f"layer {name!r} has an empty user handle")
        return value

    @field_validator("turn_length")
    @classmethod
    def _check_turn_length(cls, value: timedelta | None, info: ValidationInfo) -> timedelta | None:
        name, rotation = info.data.get("name", "?"), info.data.get("rotation")
        if rotation == "custom" and value is None:
            raise ValueError(f"layer {name!r}: a custom rotation needs turn_length")
        if rotation in ("daily", "weekly") and value is not None:
            raise ValueError(
                f"layer {name!r}: turn_length is only for a custom rotation "
                "(daily turns are 1d, weekly 7d)"
            )
        if value is not None and value <= timedelta(0):
            raise ValueError(f"layer {name!r}: turn_length must be positive, got {value}")
        return value

    @field_validator("handoff_time")
    @classmethod
    def _check_handoff_time(cls, value: str | None) -> str | None:
        if value is not None:
            _parse_hhmm(value)
        return value

    @property
    def turn(self) -> timedelta:
        """The length of one turn (wall-clock days for daily, weekly and whole-day custom)."""
        if self.rotation == "daily":
            return _DAY
        if self.rotation == "weekly":
            return _WEEK
        # The validator guarantees a custom layer has one.
        return self.turn_length or _DAY


class Override(_Frozen):
    """Puts ``user`` on call for [start, end), above every layer (also how a swap is made)."""

    user: str = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    created_by: str | None = None
    reason: str = ""

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError(f"end {value.isoformat()} must be after start {start.isoformat()}")
        return value


class Schedule(_Frozen):
    """Layers (later ones win) plus overrides (which beat every layer), in one time zone."""

    name: str = Field(min_length=1)
    timezone: str
    layers: list[Layer]
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            # OSError: a key naming a directory of the zone database, such as "America".
            raise ValueError(
                f"{value!r} is not an IANA time zone (e.g. 'Europe/London', 'America/New_York')"
            ) from None
        return value

    @field_validator("layers")
    @classmethod
    def _check_layers(cls, value: list[Layer], info: ValidationInfo) -> list[Layer]:
        if not value:
            raise ValueError(f"schedule {info.data.get('name', '?')!r} has no layers")
        seen: set[str] = set()
        for layer in value:
            # Shifts name their layer as their source, so two layers may not share a name.
            if layer.name in seen:
                raise ValueError(f"layer name {layer.name!r} is used more than once")
            seen.add(layer.name)
        return value

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's zone, whose wall clock handoffs and restrictions follow."""
        return ZoneInfo(self.timezone)


class Shift(_Frozen):
    """``user`` is on call for [start, end), because of ``source`` (a layer, or "override")."""

    user: str
    start: AwareDatetime
    end: AwareDatetime
    source: str

    @field_validator("end")
    @classmethod
    def _check_end(cls, value: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and value <= start:
            raise ValueError(f"end {value.isoformat()} must be after start {start.isoformat()}")
        return value

    @property
    def duration(self) -> timedelta:
        """Elapsed time on call (converted to UTC first, so DST days count 23 h or 25 h)."""
        return self.end.astimezone(UTC) - self.start.astimezone(UTC)


# --- instants and wall clocks -----------------------------------------------------------


def _utc(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise NaiveDatetimeError(
            f"{name} must be timezone-aware (e.g. 2026-03-02T09:00:00+00:00), "
            f"got naive {value.isoformat()}"
        )
    return value.astimezone(UTC)


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    lo, hi = _utc("start", start), _utc("end", end)
    if hi <= lo:
        raise EmptyWindowError(f"end {hi.isoformat()} must be after start {lo.isoformat()}")
    return lo, hi


def _wall(instant: datetime, zone: ZoneInfo) -> datetime:
    """The naive local wall-clock reading of an instant."""
    return instant.astimezone(zone).replace(tzinfo=None, fold=0)


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    # fold=0 reads a wall time inside a spring-forward gap with the offset in force before the
    # gap, which lands it later by the gap's length (02:30 -> 03:30), and reads a wall time
    # that occurs twice as its first occurrence.
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


# --- one layer ----------------------------------------------------------------------------

_Span = tuple[str, datetime, datetime]  # user, start, end (UTC)
_Sourced = tuple[str, str, datetime, datetime]  # user, source, start, end (UTC)


@dataclass(frozen=True)
class _Handoffs:
    """Where a layer's handoffs fall: handoff k starts turn k, held by ``users[k % n]``."""

    zone: ZoneInfo
    first: datetime  # handoff 0, UTC
    first_wall: datetime  # its intended local wall time (before any gap adjustment)
    days: int | None  # turn length in wall-clock days, or None for elapsed-time turns
    step: timedelta

    @classmethod
    def of(cls, layer: Layer, zone: ZoneInfo) -> _Handoffs:
        start = layer.start.astimezone(UTC)
        if layer.handoff_time is None:
            # The configured start is an exact instant, so it is kept even when its wall time
            # is ambiguous (a start written as the second 01:30 stays the second 01:30).
            first, first_wall = start, _wall(start, zone)
        else:
            first_wall = datetime.combine(
                _wall(start, zone).date(), _parse_hhmm(layer.handoff_time)
            )
            first = _instant(first_wall, zone)
        turn = layer.turn
        days = turn // _DAY if turn % _DAY == timedelta(0) else None
        return cls(zone=zone, first=first, first_wall=first_wall, days=days, step=turn)

    def at(self, k: int) -> datetime:
        """The instant of handoff ``k`` (k >= 0)."""
        if k == 0:
            return self.first
        if self.days is None:
            return self.first + k * self.step
        return _instant(self.first_wall + timedelta(days=k * self.days), self.zone)

    def index(self, t: datetime) -> int:
        """The turn covering ``t`` (which must not be before the first handoff)."""
        if self.days is None:
            k = (t - self.first) // self.step
        else:
            k = (_wall(t, self.zone) - self.first_wall) // timedelta(days=self.days)
        # The wall-clock estimate can be one off near a DST change; settle it on instants.
        k = max(k, 0)
        while k > 0 and self.at(k) > t:
            k -= 1
        while self.at(k + 1) <= t:
            k += 1
        return k


def _turns(layer: Layer, zone: ZoneInfo, lo: datetime, hi: datetime) -> list[_Span]:
    handoffs = _Handoffs.of(layer, zone)
    if hi <= handoffs.first:
        return []
    spans: list[_Span] = []
    k = handoffs.index(max(lo, handoffs.first))
    while (begin := handoffs.at(k)) < hi:
        s, e = max(begin, lo), min(handoffs.at(k + 1), hi)
        # A turn can be empty only if the zone skipped a whole day; it still uses its slot.
        if s < e:
            spans.append((layer.users[k % len(layer.users)], s, e))
        k += 1
    return spans


def _restriction_windows(
    restrictions: list[Restriction], zone: ZoneInfo, lo: datetime, hi: datetime
) -> list[tuple[datetime, datetime]]:
    # A weekly window can open up to 7 days (plus a DST hour) before the range it covers.
    day: date = _wall(lo, zone).date() - timedelta(days=8)
    last: date = _wall(hi, zone).date()
    windows: list[tuple[datetime, datetime]] = []
    while day <= last:
        for restriction in restrictions:
            if restriction.kind == "weekly" and restriction.start_day != _WEEKDAYS[day.weekday()]:
                continue
            opens = datetime.combine(day, _parse_hhmm(restriction.start))
            s, e = _instant(opens, zone), _instant(opens + restriction.duration, zone)
            if s < e and s < hi and e > lo:
                windows.append((max(s, lo), min(e, hi)))
        day += _DAY
    return _union(windows)


def _union(windows: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(windows):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(e, merged[-1][1]))
        else:
            merged.append((s, e))
    return merged


def _intersect(spans: list[_Span], windows: list[tuple[datetime, datetime]]) -> list[_Span]:
    # Both lists are sorted and internally disjoint, so one forward pass is enough.
    out: list[_Span] = []
    first = 0
    for user, s, e in spans:
        while first < len(windows) and windows[first][1] <= s:
            first += 1
        i = first
        while i < len(windows) and windows[i][0] < e:
            out.append((user, max(s, windows[i][0]), min(e, windows[i][1])))
            i += 1
    return out


def _layer_spans(layer: Layer, zone: ZoneInfo, lo: datetime, hi: datetime) -> list[_Span]:
    spans = _turns(layer, zone, lo, hi)
    if layer.restrictions:
        spans = _intersect(spans, _restriction_windows(layer.restrictions, zone, lo, hi))
    return spans


def layer_shifts(layer: Layer, tz: str, start: datetime, end: datetime) -> list[Shift]:
    """The layer's own shifts in [start, end) in zone ``tz``: one per turn and window, clipped."""
    lo, hi = _window(start, end)
    return [
        Shift(user=user, start=s, end=e, source=layer.name)
        for user, s, e in _layer_spans(layer, ZoneInfo(tz), lo, hi)
    ]


# --- the final schedule -------------------------------------------------------------------


def _levels(schedule: Schedule, lo: datetime, hi: datetime) -> list[list[_Sourced]]:
    """Everything that can put someone on call, lowest precedence first."""
    zone = schedule.zone
    levels = [
        [(user, layer.name, s, e) for user, s, e in _layer_spans(layer, zone, lo, hi)]
        for layer in schedule.layers
    ]
    for override in schedule.overrides:
        s, e = max(override.start.astimezone(UTC), lo), min(override.end.astimezone(UTC), hi)
        if s < e:
            levels.append([(override.user, OVERRIDE_SOURCE, s, e)])
    return levels


def _final_spans(schedule: Schedule, lo: datetime, hi: datetime) -> list[_Sourced]:
    levels = _levels(schedule, lo, hi)
    points = sorted({lo, hi, *(p for level in levels for span in level for p in span[2:])})
    cursors = [0] * len(levels)
    final: list[_Sourced] = []
    for a, b in pairwise(points):
        top = _top(levels, cursors, a)
        if top is None:
            continue
        user, source = top
        last = final[-1] if final else None
        # Splits made by boundaries underneath the winning level are invisible: rejoin them.
        if last is not None and (last[0], last[1], last[3]) == (user, source, a):
            final[-1] = (user, source, last[2], b)
        else:
            final.append((user, source, a, b))
    return final


def _top(levels: list[list[_Sourced]], cursors: list[int], at: datetime) -> tuple[str, str] | None:
    """The (user, source) of the highest level on call at ``at``; cursors only move forward."""
    for index in range(len(levels) - 1, -1, -1):
        spans, i = levels[index], cursors[index]
        while i < len(spans) and spans[i][3] <= at:
            i += 1
        cursors[index] = i
        if i < len(spans) and spans[i][2] <= at:
            return spans[i][0], spans[i][1]
    return None


def final_shifts(schedule: Schedule, start: datetime, end: datetime) -> list[Shift]:
    """Who is on call across [start, end), clipped; adjacent same-user, same-source merged."""
    lo, hi = _window(start, end)
    return [
        Shift(user=user, start=s, end=e, source=source)
        for user, source, s, e in _final_spans(schedule, lo, hi)
    ]


def on_call_at(schedule: Schedule, at: datetime) -> Shift | None:
    """The final shift covering ``at``, whole (up to a year either side), or None if nobody."""
    t = _utc("at", at)
    reach = _FIRST_LOOK
    while True:
        covering = next(
            (
                span
                for span in _final_spans(schedule, t - reach, t + reach)
                if span[2] <= t < span[3]
            ),
            None,
        )
        if covering is None:
            return None
        user, source, s, e = covering
        if (t - reach < s and e < t + reach) or reach >= _HORIZON:
            return Shift(user=user, start=s, end=e, source=source)
        reach = min(reach * 4, _HORIZON)


# --- changes and helpers ------------------------------------------------------------------


def with_override(schedule: Schedule, override: Override) -> Schedule:
    """A copy of ``schedule`` with ``override`` added last, so it wins where it overlaps."""
    return schedule.model_copy(update={"overrides": [*schedule.overrides, override]})


def swap_shifts(
    schedule: Schedule, first: Shift, second: Shift, created_by: str | None = None
) -> Schedule:
    """Swap two shifts: each user covers the other's time, as two overrides."""
    reason = f"swap: {first.user} <-> {second.user}"
    schedule = with_override(
        schedule,
        Override(
            user=second.user,
            start=first.start,
            end=first.end,
            created_by=created_by,
            reason=reason,
        ),
    )
    return with_override(
        schedule,
        Override(
            user=first.user,
            start=second.start,
            end=second.end,
            created_by=created_by,
            reason=reason,
        ),
    )


def referenced_users(schedule: Schedule) -> set[str]:
    """Every user handle the schedule can put on call (layer members and override users)."""
    users = {handle for layer in schedule.layers for handle in layer.users}
    return users | {override.user for override in schedule.overrides}


def _stamp(instant: datetime, zone: ZoneInfo) -> str:
    # The zone abbreviation tells the two 01:30s of a fall-back night apart.
    return instant.astimezone(zone).strftime("%a %Y-%m-%d %H:%M %Z")


def _duration_text(value: timedelta) -> str:
    minutes = value // timedelta(minutes=1)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    parts = [f"{n}{unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "m")) if n]
    return " ".join(parts) or "0m"


def format_shifts_table(shifts: list[Shift], tz: str) -> str:
    """An aligned table of shifts (user, from, to, duration, source), times shown in ``tz``."""
    zone = ZoneInfo(tz)
    rows = [("USER", "FROM", "TO", "DURATION", "SOURCE")]
    rows += [
        (
            shift.user,
            _stamp(shift.start, zone),
            _stamp(shift.end, zone),
            _duration_text(shift.duration),
            shift.source,
        )
        for shift in shifts
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        "  ".join(
            [*(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)), row[4]]
        )
        for row in rows
    ]
    if not shifts:
        lines.append("(nobody on call)")
    return "\n".join(lines)

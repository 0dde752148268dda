"""Table tests for on-call schedules: rotations, DST, restrictions, precedence, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from workflows.oncall import (
    EmptyWindowError,
    Layer,
    NaiveDatetimeError,
    Override,
    Schedule,
    Shift,
    final_shifts,
    format_shifts_table,
    layer_shifts,
    on_call_at,
    referenced_users,
    swap_shifts,
    with_override,
)

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
HOUR = timedelta(hours=1)


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> datetime:
    """A New York wall time (``fold=1`` is the second of a repeated hour)."""
    return datetime(year, month, day, hour, minute, tzinfo=NY, fold=fold)


def layer(**fields: Any) -> Layer:
    """A layer that defaults to a daily rotation starting Monday 2026-03-02 09:00 New York."""
    base: dict[str, Any] = {
        "name": "primary",
        "users": ["alice", "bob", "carol"],
        "rotation": "daily",
        "start": ny(2026, 3, 2, 9),
    }
    return Layer.model_validate(base | fields)


def schedule(*layers: Layer, overrides: list[Override] | None = None) -> Schedule:
    """A New York schedule."""
    return Schedule(
        name="payments", timezone="America/New_York", layers=list(layers), overrides=overrides or []
    )


def who(sched: Schedule, at: datetime) -> str | None:
    """The user on call at ``at``, or None."""
    shift = on_call_at(sched, at)
    return shift.user if shift else None


def rows(shifts: list[Shift]) -> list[tuple[str, str, datetime, datetime]]:
    """Shifts as comparable tuples (user, source, start, end)."""
    return [(s.user, s.source, s.start, s.end) for s in shifts]


# --- rotations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "at", "expected"),
    [
        # Daily from Monday 09:00: nobody before the first handoff, then one user a day.
        ({}, ny(2026, 3, 2, 8, 59), None),
        ({}, ny(2026, 3, 2, 9), "alice"),
        ({}, ny(2026, 3, 3, 8, 59), "alice"),
        ({}, ny(2026, 3, 3, 9), "bob"),
        ({}, ny(2026, 3, 4, 9), "carol"),
        ({}, ny(2026, 3, 5, 9), "alice"),
        # Weekly: Monday 09:00 to Monday 09:00.
        ({"rotation": "weekly"}, ny(2026, 3, 8, 23), "alice"),
        ({"rotation": "weekly"}, ny(2026, 3, 9, 9), "bob"),
        ({"rotation": "weekly"}, ny(2026, 3, 23, 9), "alice"),
        # Custom whole days follow the calendar.
        ({"rotation": "custom", "turn_length": "2d"}, ny(2026, 3, 4, 8, 59), "alice"),
        ({"rotation": "custom", "turn_length": "2d"}, ny(2026, 3, 4, 9), "bob"),
        # Custom sub-day turns.
        ({"rotation": "custom", "turn_length": "12h"}, ny(2026, 3, 2, 20, 59), "alice"),
        ({"rotation": "custom", "turn_length": "12h"}, ny(2026, 3, 2, 21), "bob"),
        ({"rotation": "custom", "turn_length": "12h"}, ny(2026, 3, 3, 9), "carol"),
        # handoff_time replaces the start's time of day on the start's date.
        ({"start": ny(2026, 3, 2), "handoff_time": "17:30"}, ny(2026, 3, 2, 17, 29), None),
        ({"start": ny(2026, 3, 2), "handoff_time": "17:30"}, ny(2026, 3, 2, 17, 30), "alice"),
        ({"start": ny(2026, 3, 2), "handoff_time": "17:30"}, ny(2026, 3, 3, 17, 30), "bob"),
        # Started six years (321 weeks, a dozen DST changes) earlier: still Monday 09:00 local.
        (
            {"rotation": "weekly", "users": ["alice", "bob", "carol", "dave"]}
            | {"start": ny(2020, 1, 6, 9)},
            ny(2026, 3, 2, 8, 59),
            "alice",
        ),
        (
            {"rotation": "weekly", "users": ["alice", "bob", "carol", "dave"]}
            | {"start": ny(2020, 1, 6, 9)},
            ny(2026, 3, 2, 9),
            "bob",
        ),
        # A start given in another zone is read on the schedule's wall clock (14:00Z = 09:00).
        ({"start": z(2026, 3, 2, 14)}, ny(2026, 3, 3, 9), "bob"),
    ],
)
def test_rotation_puts_the_right_user_on_call(
    fields: dict[str, Any], at: datetime, expected: str | None
) -> None:
    assert who(schedule(layer(**fields)), at) == expected


@pytest.mark.parametrize(
    ("zone", "fields", "window", "expected"),
    [
        # New York spring forward (2026-03-08): the daily turn that spans it is 23 h.
        (
            "America/New_York",
            {"rotation": "daily", "start": ny(2026, 3, 6, 9)},
            (z(2026, 3, 7, 14), z(2026, 3, 9, 13)),
            [
                ("bob", z(2026, 3, 7, 14), z(2026, 3, 8, 13)),
                ("alice", z(2026, 3, 8, 13), z(2026, 3, 9, 13)),
            ],
        ),
        # New York fall back (2026-11-01): 25 h.
        (
            "America/New_York",
            {"rotation": "daily", "start": ny(2026, 10, 31, 9)},
            (z(2026, 10, 31, 13), z(2026, 11, 2, 14)),
            [
                ("alice", z(2026, 10, 31, 13), z(2026, 11, 1, 14)),
                ("bob", z(2026, 11, 1, 14), z(2026, 11, 2, 14)),
            ],
        ),
        # London spring forward (2026-03-29): Monday 09:00 weekly turn is 167 h.
        (
            "Europe/London",
            {"rotation": "weekly", "start": datetime(2026, 3, 16, 9, tzinfo=LONDON)},
            (z(2026, 3, 23, 9), z(2026, 4, 6, 8)),
            [
                ("bob", z(2026, 3, 23, 9), z(2026, 3, 30, 8)),
                ("alice", z(2026, 3, 30, 8), z(2026, 4, 6, 8)),
            ],
        ),
        # London fall back (2026-10-25): 169 h.
        (
            "Europe/London",
            {"rotation": "weekly", "start": datetime(2026, 10, 12, 9, tzinfo=LONDON)},
            (z(2026, 10, 19, 8), z(2026, 11, 2, 9)),
            [
                ("bob", z(2026, 10, 19, 8), z(2026, 10, 26, 9)),
                ("alice", z(2026, 10, 26, 9), z(2026, 11, 2, 9)),
            ],
        ),
        # London daily across both changes: 23 h, then 25 h.
        (
            "Europe/London",
            {"rotation": "daily", "start": datetime(2026, 3, 28, 9, tzinfo=LONDON)},
            (z(2026, 3, 28, 9), z(2026, 3, 29, 8)),
            [("alice", z(2026, 3, 28, 9), z(2026, 3, 29, 8))],
        ),
        (
            "Europe/London",
            {"rotation": "daily", "start": datetime(2026, 10, 24, 9, tzinfo=LONDON)},
            (z(2026, 10, 24, 8), z(2026, 10, 25, 9)),
            [("alice", z(2026, 10, 24, 8), z(2026, 10, 25, 9))],
        ),
        # Custom 2d follows wall-clock days: 47 h across spring forward.
        (
            "America/New_York",
            {"rotation": "custom", "turn_length": "2d", "start": ny(2026, 3, 6, 9)},
            (z(2026, 3, 6, 14), z(2026, 3, 10, 13)),
            [
                ("alice", z(2026, 3, 6, 14), z(2026, 3, 8, 13)),
                ("bob", z(2026, 3, 8, 13), z(2026, 3, 10, 13)),
            ],
        ),
    ],
)
def test_handoffs_keep_local_wall_time_across_dst(
    zone: str, fields: dict[str, Any], window: tuple[datetime, datetime], expected: list[Any]
) -> None:
    shifts = layer_shifts(layer(users=["alice", "bob"], **fields), zone, *window)
    assert [(s.user, s.start, s.end) for s in shifts] == expected
    # Every handoff inside the window is at 09:00 on the local wall clock.
    assert {s.start.astimezone(ZoneInfo(zone)).strftime("%H:%M") for s in shifts} == {"09:00"}


@pytest.mark.parametrize(
    ("zone", "start", "window", "durations"),
    [
        ("America/New_York", ny(2026, 3, 7, 9), (z(2026, 3, 7, 14), z(2026, 3, 9, 13)), [23, 24]),
        (
            "America/New_York",
            ny(2026, 10, 31, 9),
            (z(2026, 10, 31, 13), z(2026, 11, 2, 14)),
            [25, 24],
        ),
        (
            "Europe/London",
            datetime(2026, 3, 28, 9, tzinfo=LONDON),
            (z(2026, 3, 28, 9), z(2026, 3, 30, 8)),
            [23, 24],
        ),
        (
            "Europe/London",
            datetime(2026, 10, 24, 9, tzinfo=LONDON),
            (z(2026, 10, 24, 8), z(2026, 10, 26, 9)),
            [25, 24],
        ),
    ],
)
def test_daily_turn_durations_are_23h_and_25h_on_change_days(
    zone: str, start: datetime, window: tuple[datetime, datetime], durations: list[int]
) -> None:
    shifts = layer_shifts(layer(start=start), zone, *window)
    assert [s.duration for s in shifts] == [n * HOUR for n in durations]


@pytest.mark.parametrize(
    ("zone", "handoff", "window", "expected"),
    [
        # 02:30 does not exist on 2026-03-08 in New York: that handoff is 03:30 EDT (07:30Z),
        # and the next day's is back at 02:30 (06:30Z). Turns: 24 h, then 23 h.
        (
            "America/New_York",
            "02:30",
            (z(2026, 3, 7, 7, 30), z(2026, 3, 9, 6, 30)),
            [
                (z(2026, 3, 7, 7, 30), z(2026, 3, 8, 7, 30), "03:30 EDT"),
                (z(2026, 3, 8, 7, 30), z(2026, 3, 9, 6, 30), "02:30 EDT"),
            ],
        ),
        # 01:30 happens twice on 2026-11-01: the first (EDT, 05:30Z) is the handoff; 24 h, 25 h.
        (
            "America/New_York",
            "01:30",
            (z(2026, 10, 31, 5, 30), z(2026, 11, 2, 6, 30)),
            [
                (z(2026, 10, 31, 5, 30), z(2026, 11, 1, 5, 30), "01:30 EDT"),
                (z(2026, 11, 1, 5, 30), z(2026, 11, 2, 6, 30), "01:30 EST"),
            ],
        ),
        # London skips 01:00-02:00 on 2026-03-29: a 01:30 handoff is 02:30 BST (01:30Z).
        (
            "Europe/London",
            "01:30",
            (z(2026, 3, 28, 1, 30), z(2026, 3, 30, 0, 30)),
            [
                (z(2026, 3, 28, 1, 30), z(2026, 3, 29, 1, 30), "02:30 BST"),
                (z(2026, 3, 29, 1, 30), z(2026, 3, 30, 0, 30), "01:30 BST"),
            ],
        ),
        # London repeats 01:00-02:00 on 2026-10-25: the handoff is the first 01:30 (BST, 00:30Z).
        (
            "Europe/London",
            "01:30",
            (z(2026, 10, 24, 0, 30), z(2026, 10, 26, 1, 30)),
            [
                (z(2026, 10, 24, 0, 30), z(2026, 10, 25, 0, 30), "01:30 BST"),
                (z(2026, 10, 25, 0, 30), z(2026, 10, 26, 1, 30), "01:30 GMT"),
            ],
        ),
    ],
)
def test_nonexistent_handoff_moves_forward_and_ambiguous_takes_first(
    zone: str, handoff: str, window: tuple[datetime, datetime], expected: list[Any]
) -> None:
    tz = ZoneInfo(zone)
    start = window[0].astimezone(tz).replace(hour=0, minute=0)
    shifts = layer_shifts(layer(start=start, handoff_time=handoff), zone, *window)
    assert [(s.start, s.end, s.end.astimezone(tz).strftime("%H:%M %Z")) for s in shifts] == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ny(2026, 11, 1, 1, 15), "alice"),  # first 01:15 (EDT), before the handoff
        (ny(2026, 11, 1, 1, 29), "alice"),
        (ny(2026, 11, 1, 1, 30), "bob"),  # first 01:30 is the handoff
        (ny(2026, 11, 1, 1, 15, fold=1), "bob"),  # second 01:15 (EST) is after it
        (ny(2026, 11, 1, 1, 45, fold=1), "bob"),
    ],
)
def test_ambiguous_hour_uses_fold_to_tell_the_two_occurrences_apart(
    at: datetime, expected: str
) -> None:
    sched = schedule(layer(start=ny(2026, 10, 31), handoff_time="01:30"))
    shift = on_call_at(sched, at)
    assert shift is not None
    assert shift.user == expected


def test_a_start_given_as_the_second_occurrence_is_kept_exactly() -> None:
    second = ny(2026, 11, 1, 1, 30, fold=1)  # 06:30Z
    sched = schedule(layer(start=second))
    assert on_call_at(sched, ny(2026, 11, 1, 1, 45)) is None  # first 01:45 is 05:45Z
    shift = on_call_at(sched, ny(2026, 11, 1, 1, 45, fold=1))
    assert shift is not None
    assert (shift.user, shift.start, shift.end) == (
        "alice",
        z(2026, 11, 1, 6, 30),
        z(2026, 11, 2, 6, 30),
    )


def test_sub_day_custom_turns_are_elapsed_time_so_wall_clock_handoffs_move() -> None:
    shifts = layer_shifts(
        layer(
            users=["alice", "bob"], rotation="custom", turn_length="12h", start=ny(2026, 3, 7, 8)
        ),
        "America/New_York",
        z(2026, 3, 7, 13),
        z(2026, 3, 9, 13),
    )
    assert [s.start.astimezone(NY).strftime("%d %H:%M %Z") for s in shifts] == [
        "07 08:00 EST",
        "07 20:00 EST",
        "08 09:00 EDT",
        "08 21:00 EDT",
    ]
    assert {s.duration for s in shifts} == {12 * HOUR}


# --- restrictions and precedence ----------------------------------------------------------

DAY_HOURS = {"kind": "daily", "start": "09:00", "duration": "8h"}
NIGHTS = {"kind": "daily", "start": "22:00", "duration": "10h"}
WEEKEND = {"kind": "weekly", "start": "17:00", "duration": "2d16h", "start_day": "friday"}


@pytest.mark.parametrize(
    ("restriction", "at", "expected"),
    [
        (DAY_HOURS, ny(2026, 3, 3, 8, 59), None),
        (DAY_HOURS, ny(2026, 3, 3, 9), "alice"),
        (DAY_HOURS, ny(2026, 3, 3, 16, 59), "alice"),
        (DAY_HOURS, ny(2026, 3, 3, 17), None),
        # Crossing midnight.
        (NIGHTS, ny(2026, 3, 2, 3), None),  # before the layer's first handoff
        (NIGHTS, ny(2026, 3, 3, 21, 59), None),
        (NIGHTS, ny(2026, 3, 3, 22), "alice"),
        (NIGHTS, ny(2026, 3, 4, 7, 59), "alice"),
        (NIGHTS, ny(2026, 3, 4, 8), None),
        # Weekly, Friday 17:00 to Monday 09:00.
        (WEEKEND, ny(2026, 3, 6, 16, 59), None),
        (WEEKEND, ny(2026, 3, 6, 17), "alice"),
        (WEEKEND, ny(2026, 3, 8, 12), "alice"),
        (WEEKEND, ny(2026, 3, 9, 8, 59), "alice"),
        (WEEKEND, ny(2026, 3, 9, 9), None),
        (WEEKEND, ny(2026, 3, 11, 12), None),
        (WEEKEND, ny(2026, 3, 13, 17), "bob"),
    ],
)
def test_restricted_layer_is_on_call_only_inside_its_windows(
    restriction: dict[str, Any], at: datetime, expected: str | None
) -> None:
    sched = schedule(layer(rotation="weekly", users=["alice", "bob"], restrictions=[restriction]))
    assert who(sched, at) == expected


@pytest.mark.parametrize(
    ("users", "restriction", "window", "expected"),
    [
        # The weekend window spans the spring-forward night: 63 h of a 64 h wall-clock span.
        (
            ["alice", "bob"],
            WEEKEND,
            (ny(2026, 3, 2, 9), ny(2026, 3, 16, 9)),
            [
                ("alice", z(2026, 3, 6, 22), z(2026, 3, 9, 13)),
                ("bob", z(2026, 3, 13, 21), z(2026, 3, 16, 13)),
            ],
        ),
        # 22:00 for 10h on the spring-forward night still ends at 08:00 local: 9 h.
        (
            ["alice"],
            NIGHTS,
            (ny(2026, 3, 7, 12), ny(2026, 3, 8, 12)),
            [("alice", z(2026, 3, 8, 3), z(2026, 3, 8, 12))],
        ),
        # ... and 11 h (ending 08:00 EST) on the fall-back night.
        (
            ["alice"],
            NIGHTS,
            (ny(2026, 10, 31, 12), ny(2026, 11, 1, 12)),
            [("alice", z(2026, 11, 1, 2), z(2026, 11, 1, 13))],
        ),
        # A window opened before the range is still seen: Friday's weekend, from Sunday.
        (
            ["alice", "bob"],
            WEEKEND,
            (ny(2026, 3, 8, 12), ny(2026, 3, 10)),
            [("alice", z(2026, 3, 8, 16), z(2026, 3, 9, 13))],
        ),
        # ... and so is last night's window, from 03:00.
        (
            ["alice"],
            NIGHTS,
            (ny(2026, 3, 4, 3), ny(2026, 3, 4, 12)),
            [("alice", z(2026, 3, 4, 8), z(2026, 3, 4, 13))],
        ),
    ],
)
def test_restriction_windows_follow_the_wall_clock(
    users: list[str],
    restriction: dict[str, Any],
    window: tuple[datetime, datetime],
    expected: list[Any],
) -> None:
    weekly = layer(rotation="weekly", users=users, restrictions=[restriction])
    shifts = layer_shifts(weekly, "America/New_York", *window)
    assert [(s.user, s.start, s.end) for s in shifts] == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (ny(2026, 3, 2, 10), "alice"),  # turn 0
        (ny(2026, 3, 6, 16), "bob"),  # turn 4, Friday
        (ny(2026, 3, 7, 12), None),  # turn 5 (carol) falls on Saturday, outside the windows
        (ny(2026, 3, 8, 12), None),  # turn 6 (alice), Sunday
        # Turn 7: the rotation kept advancing through the weekend, so bob, not carol.
        (ny(2026, 3, 9, 10), "bob"),
    ],
)
def test_rotation_keeps_advancing_while_restricted(at: datetime, expected: str | None) -> None:
    weekdays = {"kind": "weekly", "start": "09:00", "duration": "4d8h", "start_day": "monday"}
    assert who(schedule(layer(restrictions=[weekdays])), at) == expected


BASE = layer(name="base", rotation="weekly", users=["alice", "bob"])
DAYTIME = layer(name="daytime", users=["carol", "dave"], restrictions=[DAY_HOURS])


@pytest.mark.parametrize(
    ("layers", "at", "expected"),
    [
        # The later layer wins where it has someone; the earlier shows through elsewhere.
        ((BASE, DAYTIME), ny(2026, 3, 3, 10), ("dave", "daytime")),
        ((BASE, DAYTIME), ny(2026, 3, 3, 18), ("alice", "base")),
        ((BASE, DAYTIME), ny(2026, 3, 9, 12), ("dave", "daytime")),
        ((BASE, DAYTIME), ny(2026, 3, 9, 8), ("alice", "base")),
        ((BASE, DAYTIME), ny(2026, 3, 9, 17), ("bob", "base")),
        # Listed the other way round, the unrestricted base layer hides the daytime one.
        ((DAYTIME, BASE), ny(2026, 3, 3, 10), ("alice", "base")),
    ],
)
def test_later_layers_take_precedence(
    layers: tuple[Layer, ...], at: datetime, expected: tuple[str, str]
) -> None:
    shift = on_call_at(schedule(*layers), at)
    assert shift is not None
    assert (shift.user, shift.source) == expected


# --- overrides and the final schedule -----------------------------------------------------

WEEK_1 = (ny(2026, 3, 2, 9), ny(2026, 3, 9, 9))


def override(user: str, start: datetime, end: datetime) -> Override:
    """An override by the lead."""
    return Override(user=user, start=start, end=end, created_by="alice", reason="test")


@pytest.mark.parametrize(
    ("overrides", "window", "expected"),
    [
        # Inside a shift: the shift is split around it.
        (
            [override("dave", ny(2026, 3, 3, 12), ny(2026, 3, 3, 18))],
            WEEK_1,
            [
                ("alice", "primary", z(2026, 3, 2, 14), z(2026, 3, 3, 17)),
                ("dave", "override", z(2026, 3, 3, 17), z(2026, 3, 3, 23)),
                ("alice", "primary", z(2026, 3, 3, 23), z(2026, 3, 9, 13)),
            ],
        ),
        # Across a handoff: it beats both users' shifts.
        (
            [override("carol", ny(2026, 3, 8, 20), ny(2026, 3, 9, 12))],
            (ny(2026, 3, 8), ny(2026, 3, 10)),
            [
                ("alice", "primary", z(2026, 3, 8, 5), z(2026, 3, 9, 0)),
                ("carol", "override", z(2026, 3, 9, 0), z(2026, 3, 9, 16)),
                ("bob", "primary", z(2026, 3, 9, 16), z(2026, 3, 10, 4)),
            ],
        ),
        # Overlapping overrides: the one listed last wins.
        (
            [
                override("dave", ny(2026, 3, 3, 12), ny(2026, 3, 3, 18)),
                override("carol", ny(2026, 3, 3, 15), ny(2026, 3, 3, 20)),
            ],
            (ny(2026, 3, 3, 10), ny(2026, 3, 3, 22)),
            [
                ("alice", "primary", z(2026, 3, 3, 15), z(2026, 3, 3, 17)),
                ("dave", "override", z(2026, 3, 3, 17), z(2026, 3, 3, 20)),
                ("carol", "override", z(2026, 3, 3, 20), z(2026, 3, 4, 1)),
                ("alice", "primary", z(2026, 3, 4, 1), z(2026, 3, 4, 3)),
            ],
        ),
        # Partly outside the window: clipped to it.
        (
            [override("dave", ny(2026, 3, 1), ny(2026, 3, 2, 12))],
            WEEK_1,
            [
                ("dave", "override", z(2026, 3, 2, 14), z(2026, 3, 2, 17)),
                ("alice", "primary", z(2026, 3, 2, 17), z(2026, 3, 9, 13)),
            ],
        ),
    ],
)
def test_overrides_beat_layers(
    overrides: list[Override], window: tuple[datetime, datetime], expected: list[Any]
) -> None:
    sched = schedule(layer(rotation="weekly", users=["alice", "bob"]), overrides=overrides)
    assert rows(final_shifts(sched, *window)) == expected


def test_override_fills_a_gap_where_nobody_is_on_call() -> None:
    sched = schedule(
        layer(restrictions=[DAY_HOURS]),
        overrides=[override("dave", ny(2026, 3, 3, 20), ny(2026, 3, 3, 23))],
    )
    assert on_call_at(sched, ny(2026, 3, 3, 19)) is None
    assert on_call_at(sched, ny(2026, 3, 3, 21)) == Shift(
        user="dave", start=z(2026, 3, 4, 1), end=z(2026, 3, 4, 4), source="override"
    )


@pytest.mark.parametrize(
    ("layers", "overrides", "expected"),
    [
        # A one-person daily layer is one shift, not fourteen.
        (
            (layer(users=["alice"]),),
            [],
            [("alice", "primary", z(2026, 3, 2, 14), z(2026, 3, 16, 13))],
        ),
        # Handoffs of a layer underneath do not split the shift of the layer on top.
        (
            (layer(name="base", users=["alice", "bob"]), layer(name="cover", users=["carol"])),
            [],
            [("carol", "cover", z(2026, 3, 2, 14), z(2026, 3, 16, 13))],
        ),
        # Same user, different source: kept apart so the source column stays true.
        (
            (layer(users=["alice"]),),
            [override("alice", ny(2026, 3, 9, 9), ny(2026, 3, 9, 11))],
            [
                ("alice", "primary", z(2026, 3, 2, 14), z(2026, 3, 9, 13)),
                ("alice", "override", z(2026, 3, 9, 13), z(2026, 3, 9, 15)),
                ("alice", "primary", z(2026, 3, 9, 15), z(2026, 3, 16, 13)),
            ],
        ),
    ],
)
def test_final_shifts_merge_adjacent_shifts_of_the_same_user(
    layers: tuple[Layer, ...], overrides: list[Override], expected: list[Any]
) -> None:
    sched = schedule(*layers, overrides=overrides)
    assert rows(final_shifts(sched, ny(2026, 3, 2, 9), ny(2026, 3, 16, 9))) == expected


def test_on_call_at_returns_the_whole_shift_not_a_clipped_piece() -> None:
    sched = schedule(layer(rotation="weekly", users=["alice", "bob"]))
    assert on_call_at(sched, ny(2026, 3, 4, 12)) == Shift(
        user="alice", start=z(2026, 3, 2, 14), end=z(2026, 3, 9, 13), source="primary"
    )


def test_an_endless_shift_is_reported_up_to_a_year_ahead() -> None:
    shift = on_call_at(schedule(layer(users=["alice"])), z(2026, 6, 1))
    assert shift == Shift(
        user="alice", start=z(2026, 3, 2, 14), end=z(2027, 6, 2), source="primary"
    )


# --- changes ------------------------------------------------------------------------------


def test_with_override_returns_a_new_schedule_and_the_newest_override_wins() -> None:
    original = schedule(
        layer(rotation="weekly", users=["alice", "bob"]),
        overrides=[override("dave", ny(2026, 3, 3), ny(2026, 3, 4))],
    )
    changed = with_override(original, override("carol", ny(2026, 3, 3, 12), ny(2026, 3, 3, 13)))
    assert [o.user for o in original.overrides] == ["dave"]
    assert [o.user for o in changed.overrides] == ["dave", "carol"]
    noon = ny(2026, 3, 3, 12, 30)
    assert (who(original, noon), who(changed, noon)) == ("dave", "carol")


def test_swap_shifts_is_two_overrides() -> None:
    sched = schedule(layer(rotation="weekly", users=["alice", "bob"]))
    first, second = final_shifts(sched, ny(2026, 3, 2, 9), ny(2026, 3, 16, 9))
    swapped = swap_shifts(sched, first, second, created_by="carol")
    assert rows(final_shifts(swapped, ny(2026, 3, 2, 9), ny(2026, 3, 16, 9))) == [
        ("bob", "override", z(2026, 3, 2, 14), z(2026, 3, 9, 13)),
        ("alice", "override", z(2026, 3, 9, 13), z(2026, 3, 16, 13)),
    ]
    assert {(o.created_by, o.reason) for o in swapped.overrides} == {
        ("carol", "swap: alice <-> bob")
    }


def test_referenced_users_lists_layer_members_and_override_users() -> None:
    sched = schedule(
        layer(users=["alice", "bob"]),
        layer(name="secondary", users=["bob", "carol"]),
        overrides=[override("dave", ny(2026, 3, 3), ny(2026, 3, 4))],
    )
    assert referenced_users(sched) == {"alice", "bob", "carol", "dave"}


# --- validation ---------------------------------------------------------------------------


def valid() -> dict[str, Any]:
    """A valid schedule as it would be loaded from config."""
    return {
        "name": "payments",
        "timezone": "America/New_York",
        "layers": [
            {
                "name": "primary",
                "users": ["alice", "bob"],
                "rotation": "weekly",
                "start": "2026-03-02T09:00:00-05:00",
                "restrictions": [{"kind": "daily", "start": "09:00", "duration": "8h"}],
            }
        ],
        "overrides": [
            {"user": "dave", "start": "2026-03-03T12:00:00Z", "end": "2026-03-03T18:00:00Z"}
        ],
    }


def _set(data: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


LAYER = ("layers", 0)
RESTRICTION = ("layers", 0, "restrictions", 0)
WEEKLY_ONLY = "Value error, a weekly restriction needs start_day (monday to sunday)"


@pytest.mark.parametrize(
    ("path", "value", "loc", "msg"),
    [
        (("layers",), [], ("layers",), "Value error, schedule 'payments' has no layers"),
        (
            (*LAYER, "users"),
            [],
            (*LAYER, "users"),
            "Value error, layer 'primary' has no users; list at least one handle",
        ),
        (
            (*LAYER, "users"),
            ["alice", " "],
            (*LAYER, "users"),
            "Value error, layer 'primary' has an empty user handle",
        ),
        (
            (*LAYER, "rotation"),
            "monthly",
            (*LAYER, "rotation"),
            "Input should be 'daily', 'weekly' or 'custom'",
        ),
        (
            ("timezone",),
            "Mars/Olympus_Mons",
            ("timezone",),
            "Value error, 'Mars/Olympus_Mons' is not an IANA time zone "
            "(e.g. 'Europe/London', 'America/New_York')",
        ),
        (
            ("timezone",),
            "America",
            ("timezone",),
            "Value error, 'America' is not an IANA time zone "
            "(e.g. 'Europe/London', 'America/New_York')",
        ),
        (
            (*LAYER, "rotation"),
            "custom",
            (*LAYER, "turn_length"),
            "Value error, layer 'primary': a custom rotation needs turn_length",
        ),
        (
            (*LAYER, "turn_length"),
            "2d",
            (*LAYER, "turn_length"),
            "Value error, layer 'primary': turn_length is only for a custom rotation "
            "(daily turns are 1d, weekly 7d)",
        ),
        (
            (*LAYER, "start"),
            "2026-03-02T09:00:00",
            (*LAYER, "start"),
            "Input should have timezone info",
        ),
        (
            (*LAYER, "handoff_time"),
            "9am",
            (*LAYER, "handoff_time"),
            "Value error, '9am' is not a time of day as HH:MM (00:00 to 23:59)",
        ),
        (
            (*LAYER, "colour"),
            "red",
            (*LAYER, "colour"),
            "Extra inputs are not permitted",
        ),
        (
            (*RESTRICTION, "start"),
            "24:00",
            (*RESTRICTION, "start"),
            "Value error, '24:00' is not a time of day as HH:MM (00:00 to 23:59)",
        ),
        (
            (*RESTRICTION, "duration"),
            "25h",
            (*RESTRICTION, "duration"),
            "Value error, must be more than 0 and at most 24h, got 1 day, 1:00:00",
        ),
        (
            (*RESTRICTION, "start_day"),
            "monday",
            (*RESTRICTION, "start_day"),
            "Value error, only a weekly restriction takes start_day",
        ),
        ((*RESTRICTION, "kind"), "weekly", (*RESTRICTION, "start_day"), WEEKLY_ONLY),
        (
            ("overrides", 0, "end"),
            "2026-03-03T12:00:00Z",
            ("overrides", 0, "end"),
            "Value error, end 2026-03-03T12:00:00+00:00 must be after start "
            "2026-03-03T12:00:00+00:00",
        ),
        (
            ("overrides", 0, "end"),
            "2026-03-03T06:00:00-05:00",
            ("overrides", 0, "end"),
            "Value error, end 2026-03-03T06:00:00-05:00 must be after start "
            "2026-03-03T12:00:00+00:00",
        ),
    ],
)
def test_invalid_schedules_are_rejected_naming_the_field(
    path: tuple[str | int, ...], value: Any, loc: tuple[str | int, ...], msg: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        Schedule.model_validate(_set(valid(), path, value))
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [(loc, msg)]


def test_custom_turn_length_must_be_positive() -> None:
    with pytest.raises(ValidationError) as caught:
        layer(rotation="custom", turn_length="0s")
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (
            ("turn_length",),
            "Value error, layer 'primary': turn_length must be positive, got 0:00:00",
        )
    ]


def test_layer_names_must_be_unique() -> None:
    data = valid()
    data["layers"].append(dict(data["layers"][0]))
    with pytest.raises(ValidationError) as caught:
        Schedule.model_validate(data)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [
        (("layers",), "Value error, layer name 'primary' is used more than once")
    ]


def test_models_are_frozen() -> None:
    sched = Schedule.model_validate(valid())
    with pytest.raises(ValidationError, match="Instance is frozen"):
        sched.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda s: on_call_at(s, datetime(2026, 3, 3, 12)),
            "at must be timezone-aware (e.g. 2026-03-02T09:00:00+00:00), "
            "got naive 2026-03-03T12:00:00",
        ),
        (
            lambda s: final_shifts(s, datetime(2026, 3, 3), z(2026, 3, 4)),
            "start must be timezone-aware (e.g. 2026-03-02T09:00:00+00:00), "
            "got naive 2026-03-03T00:00:00",
        ),
        (
            lambda s: layer_shifts(s.layers[0], s.timezone, z(2026, 3, 3), datetime(2026, 3, 4)),
            "end must be timezone-aware (e.g. 2026-03-02T09:00:00+00:00), "
            "got naive 2026-03-04T00:00:00",
        ),
    ],
)
def test_naive_datetimes_are_refused(call: Any, message: str) -> None:
    with pytest.raises(NaiveDatetimeError) as caught:
        call(Schedule.model_validate(valid()))
    assert str(caught.value) == message


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(EmptyWindowError) as caught:
        final_shifts(Schedule.model_validate(valid()), z(2026, 3, 4), z(2026, 3, 4))
    assert str(caught.value) == (
        "end 2026-03-04T00:00:00+00:00 must be after start 2026-03-04T00:00:00+00:00"
    )


# --- history round trip and display -------------------------------------------------------


def test_schedule_round_trips_through_json_and_computes_the_same() -> None:
    sched = schedule(
        layer(rotation="weekly", users=["alice", "bob"]),
        layer(
            name="nights",
            users=["carol", "dave"],
            rotation="custom",
            turn_length="12h",
            start=ny(2026, 3, 7, 8),
            restrictions=[NIGHTS, WEEKEND],
        ),
        overrides=[override("dave", ny(2026, 3, 8, 1), ny(2026, 3, 8, 4))],
    )
    dumped = sched.model_dump(mode="json")
    assert dumped["layers"][1]["turn_length"] == "12h"
    assert dumped["layers"][1]["restrictions"][1]["duration"] == "2d16h"
    restored = Schedule.model_validate(dumped)
    assert restored == sched
    window = (ny(2026, 3, 1), ny(2026, 3, 15))
    assert final_shifts(restored, *window) == final_shifts(sched, *window)


def test_format_shifts_table_shows_local_times_with_zone_abbreviations() -> None:
    shifts = [
        Shift(user="alice", start=z(2026, 3, 2, 14), end=z(2026, 3, 9, 13), source="primary"),
        Shift(user="dave", start=z(2026, 3, 9, 13), end=z(2026, 3, 9, 14, 30), source="override"),
    ]
    assert format_shifts_table(shifts, "America/New_York") == (
        "USER   FROM                      TO                        DURATION  SOURCE\n"
        "alice  Mon 2026-03-02 09:00 EST  Mon 2026-03-09 09:00 EDT  6d 23h    primary\n"
        "dave   Mon 2026-03-09 09:00 EDT  Mon 2026-03-09 10:30 EDT  1h 30m    override"
    )


def test_format_shifts_table_says_when_nobody_is_on_call() -> None:
    assert format_shifts_table([], "Europe/London") == (
        "USER  FROM  TO  DURATION  SOURCE\n(nobody on call)"
    )

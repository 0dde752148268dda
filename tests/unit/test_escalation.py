"""Table tests for escalation policies: targets, rules, dedup keys, attempts, low urgency."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from activities.contracts import ContactKind, ContactMethod
from workflows.escalation import (
    EscalationLevel,
    EscalationPolicy,
    EscalationSnapshot,
    EscalationTarget,
    LevelResolution,
    NaiveTimeError,
    NotificationRule,
    OutOfRangeError,
    PagePlan,
    Responder,
    dedup_key,
    level_at,
    level_plans,
    low_urgency_wait,
    policy_problems,
    responder_problems,
    total_attempts,
)
from workflows.oncall import Layer, Override, Schedule
from workflows.time_intervals import TimeInterval, contains

NY = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)
CONSOLE = ContactMethod(kind=ContactKind.CONSOLE)
ALICE_SLACK = ContactMethod(kind=ContactKind.SLACK, address="U0ALICE")
ALICE_EMAIL = ContactMethod(kind=ContactKind.EMAIL, address="alice@example.com")
CAROL_PD = ContactMethod(kind=ContactKind.PAGERDUTY, address="payments")
CAROL_EMAIL = ContactMethod(kind=ContactKind.EMAIL, address="carol@example.com")


def z(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0, fold: int = 0) -> datetime:
    """A New York wall time, as a UTC instant (``fold=1``: the second of a repeated hour)."""
    return datetime(year, month, day, hour, minute, tzinfo=NY, fold=fold).astimezone(UTC)


# Daily turns at 09:00 New York from Monday 2026-03-02: alice, bob, carol, alice, ...
# 2026-03-08 (spring forward) is alice's, 2026-11-01 (fall back) bob's, 2026-10-31 alice's.
PRIMARY = Schedule(
    name="payments-primary",
    timezone="America/New_York",
    layers=[
        Layer(
            name="daily",
            users=["alice", "bob", "carol"],
            rotation="daily",
            start=datetime(2026, 3, 2, 9, tzinfo=NY),
        )
    ],
)
# Nobody is on call before its first handoff on 2026-06-01.
SECONDARY = Schedule(
    name="payments-secondary",
    timezone="America/New_York",
    layers=[
        Layer(
            name="weekly",
            users=["carol"],
            rotation="weekly",
            start=datetime(2026, 6, 1, 9, tzinfo=NY),
        )
    ],
)
RESPONDERS = {
    "alice": Responder(
        handle="alice",
        name="Alice Example",
        contact_methods=[ALICE_SLACK, ALICE_EMAIL],
        notification_rules=[
            NotificationRule(contact=ContactKind.SLACK),
            NotificationRule(contact=1, after=timedelta(minutes=2)),
        ],
    ),
    "bob": Responder(handle="bob", name="Bob Example"),
    "carol": Responder(
        handle="carol", name="Carol Example", contact_methods=[CAROL_PD, CAROL_EMAIL]
    ),
}
WORKING_HOURS = TimeInterval.model_validate(
    {
        "name": "office",
        "time_intervals": [
            {
                "weekdays": ["monday:friday"],
                "times": [{"start_time": "09:00", "end_time": "17:00"}],
                "location": "America/New_York",
            }
        ],
    }
)


def target(text: str) -> EscalationTarget:
    """``schedule:NAME`` is a schedule target, anything else a user."""
    if text.startswith("schedule:"):
        return EscalationTarget(schedule=text.removeprefix("schedule:"))
    return EscalationTarget(user=text)


def policy(*levels: list[str], **fields: Any) -> EscalationPolicy:
    """A policy with one level per list of targets, 5 minutes apart."""
    level_fields = fields.pop("level_fields", {})
    return EscalationPolicy(
        name="payments",
        levels=[
            EscalationLevel(targets=[target(t) for t in level], delay="5m", **level_fields)
            for level in levels
        ],
        **fields,
    )


def snapshot(pol: EscalationPolicy, **fields: Any) -> EscalationSnapshot:
    """A snapshot of INC-7 with both schedules, the three responders and the office hours."""
    base: dict[str, Any] = {
        "incident_id": "INC-7",
        "policy": pol,
        "schedules": {"payments-primary": PRIMARY, "payments-secondary": SECONDARY},
        "responders": RESPONDERS,
        "intervals": {"office": WORKING_HOURS},
    }
    return EscalationSnapshot(**(base | fields))


def summary(resolution: LevelResolution) -> list[tuple[str, str, int, timedelta, str]]:
    """Plans as comparable tuples (user, contact kind, contact index, offset, via)."""
    return [
        (p.user, p.contact.kind.value, p.contact_index, p.offset, p.via) for p in resolution.plans
    ]


def users(resolution: LevelResolution) -> list[str]:
    """The users paged, once each, in plan order."""
    return list(dict.fromkeys(p.user for p in resolution.plans))


# --- resolving targets --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # The handoff at 09:00 New York, on an ordinary day.
        (ny(2026, 3, 3, 8, 59), "alice"),
        (ny(2026, 3, 3, 9), "bob"),
        # Spring forward (2026-03-08): the handoff stays 09:00 local, 13:00 UTC, not 14:00.
        (z(2026, 3, 8, 12, 59), "carol"),
        (z(2026, 3, 8, 13), "alice"),
        (z(2026, 3, 8, 13, 30), "alice"),
        # Inside the skipped hour (06:00-07:00 UTC is 01:00 EST then 03:00 EDT).
        (z(2026, 3, 8, 7), "carol"),
        # Fall back (2026-11-01): 09:00 EST is 14:00 UTC, not 13:00.
        (z(2026, 11, 1, 13), "alice"),
        (z(2026, 11, 1, 13, 59), "alice"),
        (z(2026, 11, 1, 14), "bob"),
        # Both readings of the repeated 01:30 are still alice's turn from 2026-10-31.
        (ny(2026, 11, 1, 1, 30, fold=0), "alice"),
        (ny(2026, 11, 1, 1, 30, fold=1), "alice"),
    ],
)
def test_schedule_target_resolves_who_is_on_call(at: datetime, expected: str) -> None:
    resolution = level_plans(
        snapshot(policy(["schedule:payments-primary"])), level=0, pass_=0, at=at
    )
    assert users(resolution) == [expected]
    assert {p.via for p in resolution.plans} == {
        f"level 1 via schedule payments-primary ({expected} on call)"
    }
    assert resolution.warnings == []


def test_override_started_mid_incident_wins_at_the_next_level() -> None:
    sched = PRIMARY.model_copy(
        update={
            "overrides": [Override(user="carol", start=ny(2026, 3, 3, 10), end=ny(2026, 3, 3, 12))]
        }
    )
    snap = snapshot(policy(["schedule:payments-primary"]), schedules={"payments-primary": sched})
    assert users(level_plans(snap, level=0, pass_=0, at=ny(2026, 3, 3, 9, 55))) == ["bob"]
    assert users(level_plans(snap, level=0, pass_=0, at=ny(2026, 3, 3, 10))) == ["carol"]


def test_level_expands_user_and_schedule_targets_into_rules() -> None:
    snap = snapshot(policy(["alice"], ["carol", "schedule:payments-primary"]))
    resolution = level_plans(snap, level=1, pass_=0, at=ny(2026, 3, 3, 10))
    assert summary(resolution) == [
        ("carol", "pagerduty", 0, timedelta(0), "level 2 via user carol"),
        ("carol", "email", 1, timedelta(0), "level 2 via user carol"),
        ("bob", "console", 0, timedelta(0), "level 2 via schedule payments-primary (bob on call)"),
    ]
    assert {(p.level, p.pass_, p.attempt) for p in resolution.plans} == {(1, 0, 1)}


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        # Directly and through the schedule: alice is paged once, via the first target.
        (
            ["alice", "schedule:payments-primary", "alice"],
            [
                ("alice", "slack", 0, timedelta(0), "level 1 via user alice"),
                ("alice", "email", 1, timedelta(minutes=2), "level 1 via user alice"),
            ],
        ),
        (
            ["schedule:payments-primary", "alice"],
            [
                (
                    "alice",
                    "slack",
                    0,
                    timedelta(0),
                    "level 1 via schedule payments-primary (alice on call)",
                ),
                (
                    "alice",
                    "email",
                    1,
                    timedelta(minutes=2),
                    "level 1 via schedule payments-primary (alice on call)",
                ),
            ],
        ),
    ],
)
def test_all_mode_collapses_duplicates(
    targets: list[str], expected: list[tuple[str, str, int, timedelta, str]]
) -> None:
    resolution = level_plans(snapshot(policy(targets)), level=0, pass_=0, at=ny(2026, 3, 2, 10))
    assert summary(resolution) == expected
    assert len({p.dedup_key for p in resolution.plans}) == len(expected)


@pytest.mark.parametrize(
    ("pass_", "expected"),
    [(0, ["alice"]), (1, ["bob"]), (2, ["carol"]), (3, ["alice"]), (4, ["bob"])],
)
def test_round_robin_rotates_one_target_per_pass(pass_: int, expected: list[str]) -> None:
    pol = policy(["alice", "bob", "carol"], repeat=4, level_fields={"mode": "round_robin"})
    resolution = level_plans(snapshot(pol), level=0, pass_=pass_, at=ny(2026, 3, 2, 10))
    assert users(resolution) == expected
    assert {p.attempt for p in resolution.plans} == {pass_}


def test_all_mode_pages_every_target_on_every_pass() -> None:
    pol = policy(["alice", "bob", "carol"], repeat=2)
    for pass_ in range(3):
        resolution = level_plans(snapshot(pol), level=0, pass_=pass_, at=ny(2026, 3, 2, 10))
        assert users(resolution) == ["alice", "bob", "carol"]


def test_plans_are_ordered_by_offset_then_target() -> None:
    resolution = level_plans(
        snapshot(policy(["alice", "bob"])), level=0, pass_=0, at=ny(2026, 3, 2, 10)
    )
    assert [(p.user, p.offset) for p in resolution.plans] == [
        ("alice", timedelta(0)),
        ("bob", timedelta(0)),
        ("alice", timedelta(minutes=2)),
    ]


@pytest.mark.parametrize(
    ("contacts", "rules", "expected", "warnings"),
    [
        # No contact methods and no rules: the console, at once.
        ([], [], [(CONSOLE, 0, timedelta(0))], []),
        # No rules: every method at once.
        (
            [ALICE_SLACK, ALICE_EMAIL],
            [],
            [(ALICE_SLACK, 0, timedelta(0)), (ALICE_EMAIL, 1, timedelta(0))],
            [],
        ),
        # Slack at once, email after 2 minutes; by kind and by index.
        (
            [ALICE_SLACK, ALICE_EMAIL],
            [{"contact": "email", "after": "2m"}, {"contact": 0}],
            [(ALICE_SLACK, 0, timedelta(0)), (ALICE_EMAIL, 1, timedelta(minutes=2))],
            [],
        ),
        # A kind reaches every method of that kind.
        (
            [ALICE_EMAIL, ALICE_SLACK, CAROL_EMAIL],
            [{"contact": "email", "after": "1m"}],
            [(ALICE_EMAIL, 0, timedelta(minutes=1)), (CAROL_EMAIL, 2, timedelta(minutes=1))],
            [],
        ),
        # Two rules on one method share its dedup key, so the earliest is the one kept.
        (
            [ALICE_SLACK],
            [{"contact": 0, "after": "10m"}, {"contact": "slack", "after": "3m"}],
            [(ALICE_SLACK, 0, timedelta(minutes=3))],
            [],
        ),
        # The console default counts as contact method 0.
        ([], [{"contact": "console", "after": "30s"}], [(CONSOLE, 0, timedelta(seconds=30))], []),
        # A rule naming a missing method is skipped, and said so.
        (
            [ALICE_SLACK],
            [{"contact": 3}, {"contact": 0, "after": "1m"}],
            [(ALICE_SLACK, 0, timedelta(minutes=1))],
            ["level 1: alice: notification_rules[0] matches no contact method"],
        ),
        # With every rule broken, alice is still paged on every method at once.
        (
            [ALICE_SLACK, ALICE_EMAIL],
            [{"contact": "webhook"}],
            [(ALICE_SLACK, 0, timedelta(0)), (ALICE_EMAIL, 1, timedelta(0))],
            [
                "level 1: alice: notification_rules[0] matches no contact method",
                "level 1: alice: paging every contact method",
            ],
        ),
    ],
)
def test_notification_rules_choose_contacts_and_offsets(
    contacts: list[ContactMethod],
    rules: list[dict[str, Any]],
    expected: list[tuple[ContactMethod, int, timedelta]],
    warnings: list[str],
) -> None:
    responder = Responder.model_validate(
        {
            "handle": "alice",
            "name": "Alice",
            "contact_methods": contacts,
            "notification_rules": rules,
        }
    )
    snap = snapshot(policy(["alice"]), responders={"alice": responder})
    resolution = level_plans(snap, level=0, pass_=0, at=ny(2026, 3, 2, 10))
    assert [(p.contact, p.contact_index, p.offset) for p in resolution.plans] == expected
    assert resolution.warnings == warnings


def test_user_without_responder_entry_gets_the_console() -> None:
    resolution = level_plans(snapshot(policy(["dave"])), level=0, pass_=0, at=ny(2026, 3, 2, 10))
    assert summary(resolution) == [("dave", "console", 0, timedelta(0), "level 1 via user dave")]
    assert resolution.warnings == []


@pytest.mark.parametrize(
    ("targets", "expected_users", "warnings"),
    [
        (
            ["schedule:payments-secondary"],
            [],
            [
                "level 1: nobody on call for schedule 'payments-secondary' "
                "at 2026-03-02T15:00:00+00:00"
            ],
        ),
        (
            ["schedule:payments-secondary", "bob"],
            ["bob"],
            [
                "level 1: nobody on call for schedule 'payments-secondary' "
                "at 2026-03-02T15:00:00+00:00"
            ],
        ),
        (["schedule:gone", "bob"], ["bob"], ["level 1: schedule 'gone' is not in the snapshot"]),
    ],
)
def test_unresolvable_schedule_targets_warn(
    targets: list[str], expected_users: list[str], warnings: list[str]
) -> None:
    resolution = level_plans(snapshot(policy(targets)), level=0, pass_=0, at=ny(2026, 3, 2, 10))
    assert users(resolution) == expected_users
    assert resolution.warnings == warnings


@pytest.mark.parametrize(
    ("level", "pass_", "at", "error", "message"),
    [
        (
            2,
            0,
            z(2026, 3, 2),
            OutOfRangeError,
            "level 2 is outside policy 'payments', which has levels 0 to 1",
        ),
        (
            -1,
            0,
            z(2026, 3, 2),
            OutOfRangeError,
            "level -1 is outside policy 'payments', which has levels 0 to 1",
        ),
        (
            0,
            2,
            z(2026, 3, 2),
            OutOfRangeError,
            "pass 2 is outside policy 'payments', which makes passes 0 to 1",
        ),
        (
            0,
            0,
            datetime(2026, 3, 2, 9),
            NaiveTimeError,
            "at must be timezone-aware (e.g. 2026-03-02T09:00:00+00:00), "
            "got naive 2026-03-02T09:00:00",
        ),
    ],
)
def test_level_plans_rejects_bad_arguments(
    level: int, pass_: int, at: datetime, error: type[Exception], message: str
) -> None:
    snap = snapshot(policy(["alice"], ["bob"], repeat=1))
    with pytest.raises(error) as raised:
        level_plans(snap, level=level, pass_=pass_, at=at)
    assert str(raised.value) == message


# --- dedup keys ---------------------------------------------------------------------------


def test_dedup_key_is_pinned() -> None:
    # Pinned: changing the format would page again everyone whose escalation is in flight.
    assert dedup_key("INC-7", 1, 4, "alice", 0) == "fireline-INC-7-l1-a4-alice-c0-c07221a117a552de"


def test_dedup_keys_are_stable_and_distinct() -> None:
    base = ("INC-7", 1, 4, "alice", 0)
    variants = [
        base,
        ("INC-8", 1, 4, "alice", 0),
        ("INC-7", 0, 4, "alice", 0),
        ("INC-7", 1, 5, "alice", 0),
        ("INC-7", 1, 4, "bob", 0),
        ("INC-7", 1, 4, "alice", 1),
        # Sanitised to the same readable text; the digest still tells them apart.
        ("INC-7", 1, 4, "a b", 0),
        ("INC-7", 1, 4, "a_b", 0),
    ]
    keys = [dedup_key(*v) for v in variants]
    assert len(set(keys)) == len(variants)
    assert [dedup_key(*v) for v in variants] == keys


@pytest.mark.parametrize(
    "user", ["alice@example.com", "Zoë Ω", "x" * 1000, "tab\there", "a/b:c?d#e"]
)
def test_dedup_key_is_printable_and_short(user: str) -> None:
    key = dedup_key("INC-" + "9" * 400, 9, 99, user, 12)
    assert 0 < len(key) <= 255
    assert set(key) <= set(string.ascii_letters + string.digits + "._@-")


def test_plans_carry_the_dedup_key_of_their_attempt() -> None:
    snap = snapshot(policy(["alice"], ["carol"], repeat=1))
    resolution = level_plans(snap, level=1, pass_=1, at=ny(2026, 3, 2, 10))
    assert [(p.attempt, p.dedup_key) for p in resolution.plans] == [
        (3, dedup_key("INC-7", 1, 3, "carol", 0)),
        (3, dedup_key("INC-7", 1, 3, "carol", 1)),
    ]


# --- attempts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "repeat", "total", "walk"),
    [
        (1, 0, 1, [(0, 0)]),
        (3, 0, 3, [(0, 0), (1, 0), (2, 0)]),
        (2, 2, 6, [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2), (1, 2)]),
        (1, 9, 10, [(0, p) for p in range(10)]),
    ],
)
def test_attempts_walk_levels_then_passes(
    levels: int, repeat: int, total: int, walk: list[tuple[int, int]]
) -> None:
    pol = policy(*[["alice"]] * levels, repeat=repeat)
    assert total_attempts(pol) == total
    assert [level_at(pol, attempt) for attempt in range(total)] == walk


@pytest.mark.parametrize(
    ("attempt", "message"),
    [
        (6, "attempt 6 is outside policy 'payments', which makes attempts 0 to 5"),
        (-1, "attempt -1 is outside policy 'payments', which makes attempts 0 to 5"),
    ],
)
def test_level_at_rejects_attempts_outside_the_policy(attempt: int, message: str) -> None:
    with pytest.raises(OutOfRangeError) as raised:
        level_at(policy(["alice"], ["bob"], repeat=2), attempt)
    assert str(raised.value) == message


# --- low urgency --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Inside working hours: page now.
        (ny(2026, 3, 4, 9), None),
        (ny(2026, 3, 4, 16, 59), None),
        # Before and after hours on a weekday.
        (ny(2026, 3, 4, 7, 30), ny(2026, 3, 4, 9)),
        (ny(2026, 3, 4, 17), ny(2026, 3, 5, 9)),
        # Friday evening and the weekend wait for Monday; this weekend is spring forward, so
        # Monday 09:00 is 13:00 UTC where Friday's was 14:00.
        (ny(2026, 3, 6, 17, 30), z(2026, 3, 9, 13)),
        (ny(2026, 3, 7, 12), z(2026, 3, 9, 13)),
        (ny(2026, 3, 8, 2, 30), z(2026, 3, 9, 13)),
        # Seconds inside the minute before opening still wait for the opening.
        (ny(2026, 3, 4, 8, 59) + timedelta(seconds=59), ny(2026, 3, 4, 9)),
        # The fall-back weekend: Monday 09:00 EST is 14:00 UTC.
        (ny(2026, 10, 31, 10), z(2026, 11, 2, 14)),
    ],
)
def test_low_urgency_waits_for_working_hours(at: datetime, expected: datetime | None) -> None:
    snap = snapshot(policy(["alice"], urgency="low", working_hours="office"))
    assert low_urgency_wait(snap, at) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"urgency": "high", "working_hours": "office"},
        {"urgency": "high"},
        # Reported by policy_problems at load; at run time a page is never held back by it.
        {"urgency": "low"},
        {"urgency": "low", "working_hours": "missing"},
    ],
)
def test_low_urgency_wait_pages_now_unless_held_by_working_hours(fields: dict[str, Any]) -> None:
    snap = snapshot(policy(["alice"], **fields))
    assert low_urgency_wait(snap, ny(2026, 3, 7, 12)) is None


def _interval(*specs: dict[str, Any]) -> TimeInterval:
    return TimeInterval.model_validate({"name": "hours", "time_intervals": list(specs)})


def _minute_by_minute(interval: TimeInterval, at: datetime, limit: timedelta) -> datetime | None:
    """The slow reference: the first whole minute (or ``at``) inside the interval."""
    if contains(interval, at):
        return None
    t = at.replace(second=0, microsecond=0) + MINUTE
    while t <= at + limit:
        if contains(interval, t):
            return t
        t += MINUTE
    raise AssertionError("the reference found no opening within its limit")


SUNDAY_GAP = {
    "weekdays": ["sunday"],
    "times": [{"start_time": "02:15", "end_time": "03:30"}],
    "location": "America/New_York",
}
REPEATED_HOUR = {
    "times": [{"start_time": "01:30", "end_time": "01:45"}],
    "location": "America/New_York",
}
LAST_DAYS = {"days_of_month": ["-2:-1"], "location": "Europe/London"}
TOKYO_LUNCH = {"times": [{"start_time": "12:00", "end_time": "13:00"}], "location": "Asia/Tokyo"}


@pytest.mark.parametrize(
    ("specs", "at", "expected"),
    [
        # 02:15 does not exist on 2026-03-08: the range is entered when the clock jumps to 03:00.
        ([SUNDAY_GAP], ny(2026, 3, 8, 0), z(2026, 3, 8, 7)),
        # After the first 01:45 EDT, the repeated hour reaches 01:30 again, in EST.
        ([REPEATED_HOUR], ny(2026, 11, 1, 1, 50), ny(2026, 11, 1, 1, 30, fold=1)),
        ([REPEATED_HOUR], ny(2026, 11, 1, 1, 10, fold=1), ny(2026, 11, 1, 1, 30, fold=1)),
        # Day-level fields open at local midnight: London's last two days of February.
        ([LAST_DAYS], z(2026, 2, 10, 12), z(2026, 2, 27)),
        # The earliest of several specs in different zones wins.
        ([LAST_DAYS, TOKYO_LUNCH], z(2026, 2, 10, 12), z(2026, 2, 11, 3)),
    ],
)
def test_next_opening_matches_a_minute_by_minute_search(
    specs: list[dict[str, Any]], at: datetime, expected: datetime
) -> None:
    interval = _interval(*specs)
    snap = snapshot(
        policy(["alice"], urgency="low", working_hours="hours"), intervals={"hours": interval}
    )
    assert low_urgency_wait(snap, at) == expected
    assert _minute_by_minute(interval, at, timedelta(days=20)) == expected


@pytest.mark.parametrize(
    "specs",
    [
        # Never again: a year that is over, and an interval with no specs at all.
        [{"years": ["2020"]}],
        [],
    ],
)
def test_interval_that_never_opens_pages_now(specs: list[dict[str, Any]]) -> None:
    snap = snapshot(
        policy(["alice"], urgency="low", working_hours="hours"),
        intervals={"hours": _interval(*specs)},
    )
    assert low_urgency_wait(snap, z(2026, 3, 2)) is None


def test_low_urgency_wait_rejects_a_naive_time() -> None:
    with pytest.raises(NaiveTimeError):
        low_urgency_wait(snapshot(policy(["alice"])), datetime(2026, 3, 2, 9))


# --- config validation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pol", "expected"),
    [
        (policy(["alice", "schedule:payments-primary"], ["bob"]), []),
        (
            policy(["alice"], ["bob", "mallory", "schedule:nights"]),
            [
                "levels[1].targets[1].user: unknown user 'mallory'",
                "levels[1].targets[2].schedule: unknown schedule 'nights'",
            ],
        ),
        (
            policy(["alice"], urgency="low", working_hours="weekends"),
            ["working_hours: unknown time interval 'weekends'"],
        ),
        (policy(["alice"], urgency="low"), ["urgency low needs working_hours"]),
        (
            policy(["eve"], urgency="low"),
            ["levels[0].targets[0].user: unknown user 'eve'", "urgency low needs working_hours"],
        ),
        (policy(["alice"], urgency="low", working_hours="office"), []),
    ],
)
def test_policy_problems(pol: EscalationPolicy, expected: list[str]) -> None:
    found = policy_problems(
        pol,
        users={"alice", "bob", "carol"},
        schedules={"payments-primary"},
        intervals={"office"},
    )
    assert found == expected


@pytest.mark.parametrize(
    ("contacts", "rules", "expected"),
    [
        ([ALICE_SLACK], [{"contact": 0}, {"contact": "slack"}], []),
        ([], [{"contact": 0}, {"contact": "console"}], []),
        (
            [ALICE_SLACK, ALICE_EMAIL],
            [{"contact": 2}, {"contact": "pagerduty"}, {"contact": "email"}],
            [
                "notification_rules[0].contact: no contact method at index 2 "
                "(contact_methods has 2)",
                "notification_rules[1].contact: no pagerduty contact method",
            ],
        ),
        (
            [],
            [{"contact": 1}, {"contact": "slack"}],
            [
                "notification_rules[0].contact: no contact method at index 1 "
                "(contact_methods is empty, so only the console default at index 0)",
                "notification_rules[1].contact: no slack contact method",
            ],
        ),
    ],
)
def test_responder_problems(
    contacts: list[ContactMethod], rules: list[dict[str, Any]], expected: list[str]
) -> None:
    responder = Responder.model_validate(
        {"handle": "bob", "name": "Bob", "contact_methods": contacts, "notification_rules": rules}
    )
    assert responder_problems(responder) == expected


@pytest.mark.parametrize(
    ("model", "data", "location", "message"),
    [
        (
            EscalationTarget,
            {"user": "alice", "schedule": "payments-primary"},
            (),
            "Value error, a target has either user or schedule, not both "
            "(user 'alice', schedule 'payments-primary')",
        ),
        (EscalationTarget, {}, (), "Value error, a target needs user or schedule"),
        (EscalationTarget, {"user": ""}, ("user",), "String should have at least 1 character"),
        (
            EscalationLevel,
            {"targets": [{"user": "alice"}], "delay": "0s"},
            ("delay",),
            "Value error, delay must be more than 0, got 0:00:00",
        ),
        (
            EscalationLevel,
            {"targets": [], "delay": "5m"},
            ("targets",),
            "List should have at least 1 item after validation, not 0",
        ),
        (
            EscalationLevel,
            {"targets": [{"user": "alice"}], "delay": "5m", "mode": "random"},
            ("mode",),
            "Input should be 'all' or 'round_robin'",
        ),
        (
            EscalationPolicy,
            {"name": "p", "levels": []},
            ("levels",),
            "List should have at least 1 item after validation, not 0",
        ),
        (
            EscalationPolicy,
            {"name": "p", "levels": [{"targets": [{"user": "a"}], "delay": "1m"}], "repeat": 10},
            ("repeat",),
            "Input should be less than or equal to 9",
        ),
        (
            EscalationPolicy,
            {"name": "p", "levels": [{"targets": [{"user": "a"}], "delay": "1m"}], "escalate": 1},
            ("escalate",),
            "Extra inputs are not permitted",
        ),
        (
            NotificationRule,
            {"contact": -1},
            ("contact",),
            "Value error, contact index must be 0 or more, got -1",
        ),
        (
            NotificationRule,
            {"contact": 0, "after": -60},
            ("after",),
            "Value error, after must not be negative, got -1 day, 23:59:00",
        ),
    ],
)
def test_models_reject_bad_config(
    model: type[Any], data: dict[str, Any], location: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        model.model_validate(data)
    errors = raised.value.errors()
    assert [(e["loc"], e["msg"]) for e in errors][:1] == [(location, message)]


# --- recorded in history --------------------------------------------------------------------


def test_snapshot_and_resolution_round_trip_through_json() -> None:
    snap = snapshot(
        policy(
            ["alice", "schedule:payments-primary"], repeat=2, urgency="low", working_hours="office"
        )
    )
    assert EscalationSnapshot.model_validate_json(snap.model_dump_json()) == snap
    resolution = level_plans(snap, level=0, pass_=1, at=ny(2026, 3, 3, 10))
    text = resolution.model_dump_json()
    assert '"pass":1' in text
    assert '"offset":"2m"' in text
    assert LevelResolution.model_validate_json(text) == resolution


def test_page_plan_accepts_its_field_name_and_its_alias() -> None:
    fields: dict[str, Any] = {
        "user": "bob",
        "contact": {"kind": "console"},
        "contact_index": 0,
        "offset": "0s",
        "level": 0,
        "attempt": 0,
        "dedup_key": "k",
        "via": "level 1 via user bob",
    }
    assert PagePlan.model_validate(fields | {"pass": 2}).pass_ == 2
    assert PagePlan.model_validate(fields | {"pass_": 2}).pass_ == 2


def test_models_are_frozen() -> None:
    pol = policy(["alice"])
    with pytest.raises(ValidationError):
        pol.repeat = 3  # type: ignore[misc]

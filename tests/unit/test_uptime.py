"""Status page arithmetic: component status from incidents, uptime bars and percentages."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from workflows.contracts import (
    ComponentStatus,
    Maintenance,
    PublicIncident,
    PublicStatus,
    StatusImpact,
    StatusTransition,
)
from workflows.uptime import (
    component_status,
    incident_statuses,
    prune_transitions,
    uptime,
    worst,
)

OP = ComponentStatus.OPERATIONAL
DEGRADED = ComponentStatus.DEGRADED_PERFORMANCE
PARTIAL = ComponentStatus.PARTIAL_OUTAGE
MAJOR = ComponentStatus.MAJOR_OUTAGE
MAINT = ComponentStatus.UNDER_MAINTENANCE
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=365)


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A time in November 2026."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def move(component: str, when: datetime, status: ComponentStatus) -> StatusTransition:
    return StatusTransition(component=component, at=when, status=status)


def incident(
    incident_id: str, status: PublicStatus, components: dict[str, ComponentStatus]
) -> PublicIncident:
    return PublicIncident(
        incident_id=incident_id,
        title="Checkout failures",
        status=status,
        impact=StatusImpact.MAJOR,
        started_at=at(28),
        updated_at=at(28),
        components=components,
    )


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([], OP),
        ([OP, DEGRADED], DEGRADED),
        ([PARTIAL, DEGRADED, MAJOR], MAJOR),
        ([MAINT, OP], MAINT),
        ([MAINT, DEGRADED], DEGRADED),
    ],
)
def test_worst(statuses: list[ComponentStatus], expected: ComponentStatus) -> None:
    assert worst(statuses) is expected


def test_component_status_is_the_worst_across_active_incidents_only() -> None:
    incidents = [
        incident("INC-1", PublicStatus.INVESTIGATING, {"checkout": PARTIAL, "website": DEGRADED}),
        incident("INC-2", PublicStatus.MONITORING, {"checkout": MAJOR}),
        incident("INC-3", PublicStatus.RESOLVED, {"website": MAJOR, "payments": MAJOR}),
    ]
    assert incident_statuses(incidents) == {"checkout": MAJOR, "website": DEGRADED}


def test_maintenance_shows_only_in_its_window_and_never_hides_an_outage() -> None:
    window = Maintenance(
        id="db-upgrade",
        title="Database upgrade",
        components=["checkout", "website"],
        starts_at=at(28, 11),
        ends_at=at(28, 13),
    )
    driven = {"website": PARTIAL}
    assert component_status("checkout", driven, [window], at(28, 10, 59)) is OP
    assert component_status("checkout", driven, [window], at(28, 11)) is MAINT
    assert component_status("checkout", driven, [window], at(28, 13)) is OP
    assert component_status("website", driven, [window], at(28, 12)) is PARTIAL
    assert component_status("payments", driven, [window], at(28, 12)) is OP


def test_no_transitions_is_a_full_green_window() -> None:
    result = uptime("checkout", [], now=NOW, tracked_since=LONG_AGO)
    assert len(result.days) == 90
    assert result.days[0].day == date(2026, 8, 31)
    assert result.days[-1].day == date(2026, 11, 28)
    assert {d.status for d in result.days} == {OP}
    assert result.percent == 100.0
    # Today counts up to now only.
    assert result.days[-1].tracked_minutes == 12 * 60


def test_major_outage_counts_fully_and_partial_counts_three_tenths() -> None:
    transitions = [
        move("checkout", at(27, 10), MAJOR),
        move("checkout", at(27, 11), PARTIAL),  # 60 min major
        move("checkout", at(27, 13), DEGRADED),  # 120 min partial
        move("checkout", at(27, 14), OP),  # 60 min degraded
        move("website", at(27, 0), MAJOR),  # another component: ignored
    ]
    result = uptime("checkout", transitions, now=NOW, tracked_since=LONG_AGO)
    day = result.days[-2]
    assert day.day == date(2026, 11, 27)
    assert day.status is MAJOR
    assert day.non_operational_minutes == pytest.approx(240)
    assert day.downtime_minutes == pytest.approx(60 + 0.3 * 120)
    assert day.uptime == pytest.approx(100 * (1440 - 96) / 1440)
    total = 89 * 1440 + 12 * 60
    assert result.percent == pytest.approx(100 * (total - 96) / total)
    assert result.days[-1].status is OP


def test_an_outage_across_midnight_is_split_between_days() -> None:
    transitions = [move("checkout", at(26, 23), MAJOR), move("checkout", at(27, 1), OP)]
    days = uptime("checkout", transitions, now=NOW, tracked_since=LONG_AGO).days
    assert (days[-3].day, days[-3].downtime_minutes) == (date(2026, 11, 26), 60)
    assert (days[-2].day, days[-2].downtime_minutes) == (date(2026, 11, 27), 60)


def test_an_ongoing_outage_runs_until_now() -> None:
    transitions = [move("checkout", at(28, 11), MAJOR)]
    result = uptime("checkout", transitions, now=NOW, tracked_since=LONG_AGO)
    assert result.days[-1].status is MAJOR
    assert result.days[-1].downtime_minutes == pytest.approx(60)


def test_the_status_before_the_window_carries_in() -> None:
    # Down since before the window opened (the pruned history keeps this transition).
    transitions = [move("checkout", at(1) - timedelta(days=120), MAJOR)]
    result = uptime("checkout", transitions, now=NOW, tracked_since=LONG_AGO)
    assert {d.status for d in result.days} == {MAJOR}
    assert result.percent == 0.0


def test_days_before_tracking_began_have_no_data() -> None:
    result = uptime("checkout", [], now=NOW, tracked_since=at(27, 12))
    assert [d.status for d in result.days[-3:]] == [None, OP, OP]
    assert result.days[-3].uptime is None
    assert result.days[-2].tracked_minutes == 12 * 60
    assert result.percent == 100.0


def test_nothing_tracked_has_no_percentage() -> None:
    result = uptime("checkout", [], now=NOW, tracked_since=NOW)
    assert result.percent is None
    assert {d.status for d in result.days} == {None}


def test_degraded_and_maintenance_are_not_downtime() -> None:
    transitions = [
        move("checkout", at(27, 0), DEGRADED),
        move("checkout", at(27, 6), MAINT),
        move("checkout", at(27, 12), OP),
    ]
    day = uptime("checkout", transitions, now=NOW, tracked_since=LONG_AGO).days[-2]
    assert day.status is DEGRADED
    assert day.downtime_minutes == 0
    assert day.non_operational_minutes == 720
    assert day.uptime == 100.0


def test_pruning_keeps_the_state_at_the_cutoff() -> None:
    cutoff = at(10)
    transitions = [
        move("checkout", at(1), MAJOR),
        move("checkout", at(2), PARTIAL),  # still partial at the cutoff: kept
        move("website", at(3), MAJOR),
        move("website", at(4), OP),  # operational at the cutoff: nothing to keep
        move("checkout", at(12), OP),
    ]
    assert prune_transitions(transitions, cutoff) == [
        move("checkout", at(2), PARTIAL),
        move("checkout", at(12), OP),
    ]

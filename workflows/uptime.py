"""Status page arithmetic: component status from incidents, and 90-day uptime bars.

Pure functions of their arguments (no clock, no I/O), used by the status page workflow and
by the web page alike.

Uptime follows Atlassian Statuspage's published rule, so numbers match a page hosted there:
a minute in ``major_outage`` is a minute of downtime, a minute in ``partial_outage`` counts
as 0.3 of one, and ``degraded_performance`` and ``under_maintenance`` are not downtime
(the service works, slowly or by plan). Uptime over a period is
``(minutes - downtime) / minutes``, counted only from when the page started tracking the
component; days before that have no data. Days are UTC days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from workflows.contracts import (
    RETENTION_DAYS,
    ComponentStatus,
    Maintenance,
    PublicIncident,
    PublicStatus,
    StatusTransition,
)

# Worse is larger. Maintenance is planned, so any unplanned problem outranks it.
_RANK = {
    ComponentStatus.OPERATIONAL: 0,
    ComponentStatus.UNDER_MAINTENANCE: 1,
    ComponentStatus.DEGRADED_PERFORMANCE: 2,
    ComponentStatus.PARTIAL_OUTAGE: 3,
    ComponentStatus.MAJOR_OUTAGE: 4,
}
# Share of a minute that counts as downtime, per status (Statuspage's weights).
DOWNTIME_WEIGHT = {
    ComponentStatus.OPERATIONAL: 0.0,
    ComponentStatus.UNDER_MAINTENANCE: 0.0,
    ComponentStatus.DEGRADED_PERFORMANCE: 0.0,
    ComponentStatus.PARTIAL_OUTAGE: 0.3,
    ComponentStatus.MAJOR_OUTAGE: 1.0,
}


def worst(statuses: Iterable[ComponentStatus]) -> ComponentStatus:
    """The worst of ``statuses``; operational when there are none."""
    return max(statuses, key=_RANK.__getitem__, default=ComponentStatus.OPERATIONAL)


def is_active(incident: PublicIncident) -> bool:
    """Whether the incident still affects its components (not resolved)."""
    return incident.status is not PublicStatus.RESOLVED


def incident_statuses(incidents: Iterable[PublicIncident]) -> dict[str, ComponentStatus]:
    """Each component's worst status across active incidents (absent: operational)."""
    found: dict[str, list[ComponentStatus]] = {}
    for incident in incidents:
        if not is_active(incident):
            continue
        for component, status in incident.components.items():
            found.setdefault(component, []).append(status)
    return {component: worst(statuses) for component, statuses in found.items()}


def in_window(maintenance: Maintenance, at: datetime) -> bool:
    """Whether ``at`` falls inside the maintenance window (start inclusive, end exclusive)."""
    return maintenance.starts_at <= at < maintenance.ends_at


def component_status(
    component: str,
    incident_driven: Mapping[str, ComponentStatus],
    maintenance: Iterable[Maintenance],
    at: datetime,
) -> ComponentStatus:
    """A component's status now: its incidents' worst, else maintenance, else operational."""
    status = incident_driven.get(component, ComponentStatus.OPERATIONAL)
    if status is ComponentStatus.OPERATIONAL and any(
        component in m.components and in_window(m, at) for m in maintenance
    ):
        return ComponentStatus.UNDER_MAINTENANCE
    return status


@dataclass(frozen=True)
class DayBar:
    """One UTC day of one component: its worst status and how long it was not operational.

    ``status`` is None for a day without data (before tracking began, or in the future).
    """

    day: date
    status: ComponentStatus | None
    # Minutes in any status but operational (degraded and maintenance included).
    non_operational_minutes: float = 0.0
    # Weighted downtime minutes (major 1.0, partial 0.3).
    downtime_minutes: float = 0.0
    # Minutes with data that day (less than 1440 on the first and the current day).
    tracked_minutes: float = 0.0
    minutes_by_status: dict[ComponentStatus, float] = field(default_factory=dict)

    @property
    def uptime(self) -> float | None:
        """Percent up that day, or None without data."""
        if self.status is None or self.tracked_minutes <= 0:
            return None
        return 100.0 * (self.tracked_minutes - self.downtime_minutes) / self.tracked_minutes


@dataclass(frozen=True)
class Uptime:
    """A component's bars, oldest day first, and its uptime percentage over them."""

    component: str
    days: list[DayBar]
    # None when nothing was tracked in the window.
    percent: float | None


def _segments(
    transitions: Sequence[StatusTransition], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, ComponentStatus]]:
    """(from, to, status) pieces covering [start, end), from one component's transitions."""
    ordered = sorted(transitions, key=lambda t: t.at)
    status = ComponentStatus.OPERATIONAL
    pieces: list[tuple[datetime, datetime, ComponentStatus]] = []
    cursor = start
    for transition in ordered:
        if transition.at <= start:
            status = transition.status
            continue
        if transition.at >= end:
            break
        pieces.append((cursor, transition.at, status))
        cursor, status = transition.at, transition.status
    pieces.append((cursor, end, status))
    return [p for p in pieces if p[1] > p[0]]


def uptime(
    component: str,
    transitions: Iterable[StatusTransition],
    *,
    now: datetime,
    tracked_since: datetime,
    days: int = RETENTION_DAYS,
) -> Uptime:
    """The last ``days`` UTC days (today included, up to ``now``) for one component.

    ``transitions`` may hold every component's; only ``component``'s are used. The status
    before the first transition is operational.
    """
    own = [t for t in transitions if t.component == component]
    today = now.astimezone(UTC).date()
    first_day = today - timedelta(days=days - 1)
    window_start = datetime.combine(first_day, time(), tzinfo=UTC)
    start = max(window_start, tracked_since)
    pieces = _segments(own, start, now) if start < now else []
    bars: list[DayBar] = []
    total_tracked = total_down = 0.0
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        day_start = datetime.combine(day, time(), tzinfo=UTC)
        day_end = day_start + timedelta(days=1)
        minutes: dict[ComponentStatus, float] = {}
        for begin, end, status in pieces:
            overlap = (min(end, day_end) - max(begin, day_start)).total_seconds() / 60
            if overlap > 0:
                minutes[status] = minutes.get(status, 0.0) + overlap
        if not minutes:
            bars.append(DayBar(day=day, status=None))
            continue
        tracked = sum(minutes.values())
        down = sum(DOWNTIME_WEIGHT[s] * m for s, m in minutes.items())
        bars.append(
            DayBar(
                day=day,
                status=worst(minutes),
                non_operational_minutes=tracked - minutes.get(ComponentStatus.OPERATIONAL, 0.0),
                downtime_minutes=down,
                tracked_minutes=tracked,
                minutes_by_status=minutes,
            )
        )
        total_tracked += tracked
        total_down += down
    percent = 100.0 * (total_tracked - total_down) / total_tracked if total_tracked > 0 else None
    return Uptime(component=component, days=bars, percent=percent)


def prune_transitions(
    transitions: Iterable[StatusTransition], cutoff: datetime
) -> list[StatusTransition]:
    """Transitions at or after ``cutoff``, plus each component's last one before it.

    The last earlier one says what the component's status was when the window opens.
    """
    kept: list[StatusTransition] = []
    before: dict[str, StatusTransition] = {}
    for transition in sorted(transitions, key=lambda t: t.at):
        if transition.at < cutoff:
            before[transition.component] = transition
        else:
            kept.append(transition)
    # An operational state at the window's start is the default; no need to keep it.
    opening = [t for t in before.values() if t.status is not ComponentStatus.OPERATIONAL]
    return sorted(opening, key=lambda t: t.at) + kept

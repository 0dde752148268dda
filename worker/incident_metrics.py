"""Incident metrics over a window: pure functions of incident and action-item records.

Definitions (every duration in seconds; an incident counts when it was *declared* in the
window [since, until); drills are left out unless asked for):

- **MTTA**: mean of ``acknowledged_at - declared_at`` over the incidents acknowledged so
  far (mitigating or resolving first counts as the acknowledgement, as in the workflow).
- **MTTR to mitigation**: mean of ``mitigated_at - declared_at`` over mitigated incidents.
- **MTTR to resolution**: mean of ``resolved_at - declared_at`` over resolved incidents.
- **MTBF** (per service): the mean time between the starts of consecutive incidents of a
  service, excluding time in incident. Sort the service's incidents by ``declared_at``;
  for each next incident the gap is ``declared_at(next) - end`` where ``end`` is the latest
  ``resolved_at`` of all earlier ones (an unresolved earlier incident means the service is
  still in incident, so the gap is 0; overlaps give 0, never a negative). MTBF is the mean
  gap; it needs at least two incidents, else it is unknown (None). The overall MTBF pools
  every service's gaps (it is not the gap between incidents of different services).
- **Time in each state**: from the timeline's transitions (reopen goes back to
  acknowledged); the current state of an unfinished incident counts up to ``until``.
- **Paging load**: pages per person; *out of hours* is outside 09:00-18:00 Monday-Friday
  in the person's time zone (from the on-call schedule they are on), else UTC.
- **Action items** (created in the window): completion rate = done / (all - dropped);
  the age of an open item is ``until - created_at``; overdue = open with ``due < until``.

A reversed or empty window raises ``WindowError`` naming the bounds; a window with no
incidents gives an honest empty report (counts zero, means None, ``empty_reason`` set).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from worker.incident_records import ActionItemRecord, IncidentRecord, drop_drills
from workflows.contracts import IncidentStatus
from workflows.durations import parse_duration

# Working hours: a page outside them woke someone or took their evening.
WORKDAY_START = time(9, 0)
WORKDAY_END = time(18, 0)
ALL_SERVICES = "all"


class WindowError(ValueError):
    """The report window cannot be used as given (reversed, empty, unreadable)."""


class Window(BaseModel):
    """[since, until) in UTC."""

    since: datetime
    until: datetime

    @property
    def length(self) -> timedelta:
        """How long the window is."""
        return self.until - self.since


def parse_time(text: str, now: datetime, field: str) -> datetime:
    """``30d`` (that long before ``now``), ``now``, or an ISO 8601 time (UTC if no zone)."""
    text = text.strip()
    if text == "now":
        return now
    if text and text[0].isdigit() and not _looks_like_date(text):
        try:
            return now - parse_duration(text)
        except ValueError as exc:
            raise WindowError(f"{field}: {exc}") from None
        except OverflowError:
            raise WindowError(f"{field}: '{text}' reaches back before the year 1") from None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(
            f"{field}: '{text}' is neither a duration (e.g. 30d, 12h) nor an ISO time "
            "(e.g. 2026-11-01 or 2026-11-01T09:00:00Z)"
        ) from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def _looks_like_date(text: str) -> bool:
    return len(text) >= 10 and text[4] == "-" and text[7] == "-"


def make_window(
    since: str | None, until: str | None, now: datetime, default_since: str = "30d"
) -> Window:
    """The window from user text; reversed or empty windows are refused with both bounds."""
    start = parse_time(since or default_since, now, "since")
    end = parse_time(until, now, "until") if until else now
    return window(start, end)


def window(since: datetime, until: datetime) -> Window:
    """A checked window: ``since`` must be before ``until``."""
    since, until = _utc(since), _utc(until)
    if since > until:
        raise WindowError(
            f"the window is reversed: since {since.isoformat()} is after until {until.isoformat()}"
        )
    if since == until:
        raise WindowError(f"the window is empty: since and until are both {since.isoformat()}")
    return Window(since=since, until=until)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


# --- report model -------------------------------------------------------------------------


class ServiceMetrics(BaseModel):
    """Reliability figures of one service (or ``all``)."""

    service: str
    incidents: int = 0
    acknowledged: int = 0
    mitigated: int = 0
    resolved: int = 0
    mtta_s: float | None = None
    mttr_mitigation_s: float | None = None
    mttr_resolution_s: float | None = None
    mtbf_s: float | None = None
    by_severity: dict[str, int] = Field(default_factory=dict)


class StateTime(BaseModel):
    """Time incidents spent in one state."""

    state: IncidentStatus
    incidents: int
    total_s: float
    mean_s: float


class PagingLoad(BaseModel):
    """How often one person was paged, and how often out of hours."""

    person: str
    timezone: str
    pages: int
    out_of_hours: int
    incidents: int


class ActionItemStats(BaseModel):
    """Postmortem follow-through."""

    total: int = 0
    done: int = 0
    dropped: int = 0
    open: int = 0
    overdue: int = 0
    completion_rate: float | None = None
    mean_open_age_s: float | None = None
    max_open_age_s: float | None = None
    mean_time_to_done_s: float | None = None


class WeekPoint(BaseModel):
    """One week (Monday 00:00 UTC) of the trend."""

    week_start: date
    incidents: int
    mtta_s: float | None = None
    mttr_mitigation_s: float | None = None
    mttr_resolution_s: float | None = None


class IncidentTimes(BaseModel):
    """One incident's own times, for the per-incident table and the histograms."""

    id: str
    title: str
    service: str
    severity: str
    status: IncidentStatus
    declared_at: datetime
    time_to_ack_s: float | None = None
    time_to_mitigate_s: float | None = None
    time_to_resolve_s: float | None = None


class MetricsReport(BaseModel):
    """Everything ``fireline report`` shows and ``/metrics`` exports."""

    since: datetime
    until: datetime
    include_drills: bool = False
    incidents: int = 0
    drills_excluded: int = 0
    overall: ServiceMetrics
    services: list[ServiceMetrics] = Field(default_factory=list)
    time_in_state: list[StateTime] = Field(default_factory=list)
    paging: list[PagingLoad] = Field(default_factory=list)
    action_items: ActionItemStats = Field(default_factory=ActionItemStats)
    weekly: list[WeekPoint] = Field(default_factory=list)
    incident_times: list[IncidentTimes] = Field(default_factory=list)
    # Incidents listed by visibility whose state could not be read, with why.
    skipped: dict[str, str] = Field(default_factory=dict)
    # Set when there is nothing to report, saying why (rather than a table of zeros).
    empty_reason: str | None = None


# --- formulas -----------------------------------------------------------------------------


def _seconds(start: datetime, end: datetime | None) -> float | None:
    return None if end is None else (end - start).total_seconds()


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.fmean(present) if present else None


def in_window(records: Iterable[IncidentRecord], win: Window) -> list[IncidentRecord]:
    """The incidents declared in [since, until)."""
    return [r for r in records if win.since <= r.declared_at < win.until]


def mtbf_gaps(records: Sequence[IncidentRecord]) -> list[float]:
    """Gaps between one service's incidents, excluding time in incident (see module doc)."""
    ordered = sorted(records, key=lambda r: (r.declared_at, r.id))
    gaps: list[float] = []
    end: datetime | None = None
    still_open = False
    for i, record in enumerate(ordered):
        if i:
            if still_open or end is None:
                gaps.append(0.0)
            else:
                gaps.append(max(0.0, (record.declared_at - end).total_seconds()))
        if record.resolved_at is None:
            still_open = True
        elif end is None or record.resolved_at > end:
            end = record.resolved_at
    return gaps


def service_metrics(
    name: str, records: Sequence[IncidentRecord], gaps: list[float]
) -> ServiceMetrics:
    """MTTA, MTTR and MTBF of one group of incidents; ``gaps`` from ``mtbf_gaps``."""
    severities: dict[str, int] = defaultdict(int)
    for r in records:
        severities[r.severity] += 1
    return ServiceMetrics(
        service=name,
        incidents=len(records),
        acknowledged=sum(r.acknowledged_at is not None for r in records),
        mitigated=sum(r.mitigated_at is not None for r in records),
        resolved=sum(r.resolved_at is not None for r in records),
        mtta_s=_mean(_seconds(r.declared_at, r.acknowledged_at) for r in records),
        mttr_mitigation_s=_mean(_seconds(r.declared_at, r.mitigated_at) for r in records),
        mttr_resolution_s=_mean(_seconds(r.declared_at, r.resolved_at) for r in records),
        mtbf_s=statistics.fmean(gaps) if gaps else None,
        by_severity=dict(sorted(severities.items())),
    )


def time_in_state(records: Iterable[IncidentRecord], as_of: datetime) -> list[StateTime]:
    """Total and mean time in each state (per incident that was ever in it)."""
    totals: dict[IncidentStatus, float] = defaultdict(float)
    seen: dict[IncidentStatus, set[str]] = defaultdict(set)
    for record in records:
        steps = sorted(record.transitions, key=lambda t: t.at)
        for i, step in enumerate(steps):
            if step.status is IncidentStatus.CLOSED:
                continue
            end = steps[i + 1].at if i + 1 < len(steps) else as_of
            totals[step.status] += max(0.0, (end - step.at).total_seconds())
            seen[step.status].add(record.id)
    return [
        StateTime(
            state=state,
            incidents=len(seen[state]),
            total_s=totals[state],
            mean_s=totals[state] / len(seen[state]),
        )
        for state in IncidentStatus
        if seen[state]
    ]


def is_out_of_hours(at: datetime, timezone: str = "UTC") -> bool:
    """Outside 09:00-18:00 Monday-Friday in ``timezone`` (an unknown zone reads as UTC)."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = at.astimezone(zone)
    if local.weekday() >= 5:
        return True
    return not (WORKDAY_START <= local.time() < WORKDAY_END)


def paging_load(
    records: Iterable[IncidentRecord], timezones: Mapping[str, str] | None = None
) -> list[PagingLoad]:
    """Pages per person, most paged first."""
    zones = timezones or {}
    pages: dict[str, int] = defaultdict(int)
    late: dict[str, int] = defaultdict(int)
    incidents: dict[str, set[str]] = defaultdict(set)
    for record in records:
        for page in record.pages:
            pages[page.recipient] += 1
            incidents[page.recipient].add(record.id)
            if is_out_of_hours(page.at, zones.get(page.recipient, "UTC")):
                late[page.recipient] += 1
    rows = [
        PagingLoad(
            person=person,
            timezone=zones.get(person, "UTC"),
            pages=count,
            out_of_hours=late[person],
            incidents=len(incidents[person]),
        )
        for person, count in pages.items()
    ]
    return sorted(rows, key=lambda r: (-r.pages, -r.out_of_hours, r.person))


def action_item_stats(items: Iterable[ActionItemRecord], win: Window) -> ActionItemStats:
    """Completion rate and age of the action items created in the window."""
    chosen = [i for i in items if win.since <= i.created_at < win.until]
    done = [i for i in chosen if i.status == "done" or (i.done_at and i.status != "dropped")]
    dropped = [i for i in chosen if i.status == "dropped"]
    open_items = [i for i in chosen if i not in done and i not in dropped]
    ages = [(win.until - i.created_at).total_seconds() for i in open_items]
    counted = len(chosen) - len(dropped)
    return ActionItemStats(
        total=len(chosen),
        done=len(done),
        dropped=len(dropped),
        open=len(open_items),
        overdue=sum(1 for i in open_items if i.due is not None and i.due < win.until),
        completion_rate=len(done) / counted if counted else None,
        mean_open_age_s=statistics.fmean(ages) if ages else None,
        max_open_age_s=max(ages) if ages else None,
        mean_time_to_done_s=_mean(_seconds(i.created_at, i.done_at) for i in done),
    )


def _week_start(at: datetime) -> date:
    day = at.astimezone(UTC).date()
    return day - timedelta(days=day.weekday())


def weekly_trend(records: Sequence[IncidentRecord], win: Window) -> list[WeekPoint]:
    """One point per week of the window, empty weeks included (a gap is news too)."""
    by_week: dict[date, list[IncidentRecord]] = defaultdict(list)
    for record in records:
        by_week[_week_start(record.declared_at)].append(record)
    points: list[WeekPoint] = []
    week = _week_start(win.since)
    last = _week_start(win.until - timedelta(microseconds=1))
    while week <= last:
        rows = by_week.get(week, [])
        points.append(
            WeekPoint(
                week_start=week,
                incidents=len(rows),
                mtta_s=_mean(_seconds(r.declared_at, r.acknowledged_at) for r in rows),
                mttr_mitigation_s=_mean(_seconds(r.declared_at, r.mitigated_at) for r in rows),
                mttr_resolution_s=_mean(_seconds(r.declared_at, r.resolved_at) for r in rows),
            )
        )
        week += timedelta(weeks=1)
    return points


def incident_times(records: Iterable[IncidentRecord]) -> list[IncidentTimes]:
    """Each incident's own time to acknowledge, mitigate and resolve, oldest first."""
    return [
        IncidentTimes(
            id=r.id,
            title=r.title,
            service=r.service,
            severity=r.severity,
            status=r.status,
            declared_at=r.declared_at,
            time_to_ack_s=_seconds(r.declared_at, r.acknowledged_at),
            time_to_mitigate_s=_seconds(r.declared_at, r.mitigated_at),
            time_to_resolve_s=_seconds(r.declared_at, r.resolved_at),
        )
        for r in sorted(records, key=lambda r: (r.declared_at, r.id))
    ]


def build_report(
    records: Iterable[IncidentRecord],
    win: Window,
    *,
    action_items: Iterable[ActionItemRecord] = (),
    timezones: Mapping[str, str] | None = None,
    include_drills: bool = False,
    skipped: Mapping[str, str] | None = None,
) -> MetricsReport:
    """The whole report for the incidents declared in ``win``."""
    windowed = in_window(records, win)
    chosen = drop_drills(windowed, include_drills)
    by_service: dict[str, list[IncidentRecord]] = defaultdict(list)
    for record in chosen:
        by_service[record.service].append(record)
    gaps = {name: mtbf_gaps(rows) for name, rows in by_service.items()}
    services = [service_metrics(name, by_service[name], gaps[name]) for name in sorted(by_service)]
    pooled = [gap for name in sorted(gaps) for gap in gaps[name]]
    empty_reason = None
    if not chosen:
        empty_reason = f"no incidents were declared between {win.since:%Y-%m-%d %H:%M} and " + (
            f"{win.until:%Y-%m-%d %H:%M} UTC"
        )
        if len(windowed) > len(chosen):
            empty_reason += f" ({len(windowed)} drill(s) left out; include them to see them)"
    return MetricsReport(
        since=win.since,
        until=win.until,
        include_drills=include_drills,
        incidents=len(chosen),
        drills_excluded=len(windowed) - len(chosen),
        overall=service_metrics(ALL_SERVICES, chosen, pooled),
        services=services,
        time_in_state=time_in_state(chosen, win.until),
        paging=paging_load(chosen, timezones),
        action_items=action_item_stats(action_items, win),
        weekly=weekly_trend(chosen, win),
        incident_times=incident_times(chosen),
        skipped=dict(skipped or {}),
        empty_reason=empty_reason,
    )

"""Alert quality: which alerts wake people for nothing, noisiest first.

Per alert name, over the incidents declared in a window (drills left out unless asked):

- ``fired``: times it went into firing while attached to an incident (flaps count each time);
  ``suppressed``: of those, how many were muted (silence, inhibition, maintenance);
- ``incidents``: incidents it was attached to (unsuppressed);
- ``paged``: of those, incidents that paged someone; ``pages``/``pages_out_of_hours``: pages sent;
- ``acknowledged``: incidents someone acknowledged (in fireline or at the alert's source);
- ``self_resolved``: incidents fireline resolved by itself (all alerts resolved) within
  ``quick`` of declaration while no person wrote anything on the timeline — the alert
  fired and went away with nobody acting;
- ``noise``: ``self_resolved / incidents``.

Order: most self-resolved first, then most incidents nobody acknowledged, then most fired.
Alerts that fired without ever reaching an incident (held by a group's wait rules) are not
in incident records, so they are not counted here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from worker.incident_metrics import Window, in_window, is_out_of_hours
from worker.incident_records import IncidentRecord, drop_drills

# "Resolved by itself within minutes": the alert cleared before anyone could have acted.
DEFAULT_QUICK = timedelta(minutes=10)


class AlertStats(BaseModel):
    """The quality figures of one alert name."""

    alertname: str
    fired: int = 0
    suppressed: int = 0
    incidents: int = 0
    paged: int = 0
    pages: int = 0
    pages_out_of_hours: int = 0
    acknowledged: int = 0
    self_resolved: int = 0
    noise: float | None = None
    advice: str = ""


class AlertQualityReport(BaseModel):
    """``fireline report alerts``: every alert name seen in the window, noisiest first."""

    since: datetime
    until: datetime
    quick_s: float
    include_drills: bool = False
    incidents: int = 0
    alerts: list[AlertStats] = Field(default_factory=list)
    empty_reason: str | None = None


def resolved_by_itself(record: IncidentRecord, quick: timedelta = DEFAULT_QUICK) -> bool:
    """fireline resolved it (no person) within ``quick``, and no person acted at all."""
    return (
        record.resolved_at is not None
        and record.resolved_by is None
        and record.resolved_at - record.declared_at <= quick
        and not record.actors
    )


def advice(stats: AlertStats) -> str:
    """A one-line suggestion for the team that owns the alert (empty when it looks fine)."""
    if stats.incidents and stats.self_resolved * 2 >= stats.incidents:
        return (
            f"resolves by itself in {stats.self_resolved} of {stats.incidents} incidents: "
            "lengthen its `for:`, raise its threshold, or delete it"
        )
    if stats.paged and stats.acknowledged == 0:
        return f"paged in {stats.paged} incidents, never acknowledged: is it actionable?"
    if stats.fired and stats.suppressed == stats.fired:
        return "always suppressed when it fires: does it still need to exist?"
    return ""


def alert_quality(
    records: Iterable[IncidentRecord],
    win: Window,
    *,
    quick: timedelta = DEFAULT_QUICK,
    timezones: Mapping[str, str] | None = None,
    include_drills: bool = False,
) -> AlertQualityReport:
    """Per-alert-name quality over the incidents declared in ``win``."""
    zones = timezones or {}
    chosen = drop_drills(in_window(records, win), include_drills)
    stats: dict[str, AlertStats] = {}
    for record in chosen:
        attached: dict[str, bool] = defaultdict(bool)  # name → any unsuppressed alert
        for alert in record.alerts:
            row = stats.setdefault(alert.alertname, AlertStats(alertname=alert.alertname))
            row.fired += alert.firings
            if alert.suppressed:
                row.suppressed += alert.firings
            attached[alert.alertname] |= not alert.suppressed
        late = sum(is_out_of_hours(p.at, zones.get(p.recipient, "UTC")) for p in record.pages)
        for name, unsuppressed in attached.items():
            if not unsuppressed:
                continue
            row = stats[name]
            row.incidents += 1
            if record.pages:
                row.paged += 1
                row.pages += len(record.pages)
                row.pages_out_of_hours += late
            if record.acknowledged_at is not None and record.acknowledged_by is not None:
                row.acknowledged += 1
            if resolved_by_itself(record, quick):
                row.self_resolved += 1
    for row in stats.values():
        row.noise = row.self_resolved / row.incidents if row.incidents else None
        row.advice = advice(row)
    ordered = sorted(
        stats.values(),
        key=lambda s: (-s.self_resolved, -(s.incidents - s.acknowledged), -s.fired, s.alertname),
    )
    empty = None
    if not ordered:
        empty = (
            f"no alerts reached an incident between {win.since:%Y-%m-%d %H:%M} and "
            f"{win.until:%Y-%m-%d %H:%M} UTC"
        )
    return AlertQualityReport(
        since=win.since,
        until=win.until,
        quick_s=quick.total_seconds(),
        include_drills=include_drills,
        incidents=len(chosen),
        alerts=ordered,
        empty_reason=empty,
    )

"""A small fixed incident set whose metrics are worked out by hand in the tests.

Week of Monday 2026-11-02 (UTC). Times are minutes after declaration unless said::

    A  checkout SEV2  Mon 11-02 10:00  ack 5   mitigated 20  resolved 40   closed 100
    B  checkout SEV1  Tue 11-03 02:00  ack 15  mitigated 45  resolved 90   closed 150
    C  checkout SEV2  Tue 11-03 03:00  ack 10  (no mitigation) resolved 60 closed 120
    D  payments SEV3  Wed 11-04 12:00  still declared (never acknowledged)
    E  checkout SEV2  Thu 11-05 09:00  a drill (left out by default)
    F  checkout SEV2  Thu 10-01 09:00  before the window
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from worker.incident_metrics import Window
from worker.incident_records import (
    ActionItemRecord,
    AlertRecord,
    IncidentRecord,
    PageRecord,
    Transition,
)
from workflows.contracts import IncidentStatus

S = IncidentStatus
WEEK = Window(since=datetime(2026, 11, 2, tzinfo=UTC), until=datetime(2026, 11, 9, tzinfo=UTC))


def at(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    """A UTC time in 2026."""
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def rec(
    id: str,
    declared: datetime,
    *,
    service: str = "checkout",
    severity: str = "SEV2",
    ack: int | None = None,
    mitigated: int | None = None,
    resolved: int | None = None,
    closed: int | None = None,
    title: str = "",
    summary: str = "",
    labels: dict[str, str] | None = None,
    alerts: list[AlertRecord] | None = None,
    pages: list[PageRecord] | None = None,
    actors: list[str] | None = None,
    resolved_by: str | None = "alice",
    acknowledged_by: str | None = None,
    runbooks: list[str] | None = None,
    drill: bool = False,
) -> IncidentRecord:
    """A record whose status and transitions follow from the minutes given."""

    def when(minutes: int | None) -> datetime | None:
        return None if minutes is None else declared + timedelta(minutes=minutes)

    steps = [Transition(status=S.DECLARED, at=declared)]
    status = S.DECLARED
    for minutes, state in (
        (ack, S.ACKNOWLEDGED),
        (mitigated, S.MITIGATED),
        (resolved, S.RESOLVED),
        (closed, S.CLOSED),
    ):
        moment = when(minutes)
        if moment is not None:
            steps.append(Transition(status=state, at=moment))
            status = state
    return IncidentRecord(
        id=id,
        title=title or f"incident {id}",
        service=service,
        severity=severity,
        status=status,
        labels=labels or {},
        alerts=alerts or [],
        summary=summary,
        declared_at=declared,
        acknowledged_at=when(ack),
        acknowledged_by=acknowledged_by if acknowledged_by else ("alice" if ack else None),
        mitigated_at=when(mitigated),
        resolved_at=when(resolved),
        closed_at=when(closed),
        resolved_by=resolved_by if resolved is not None else None,
        transitions=steps,
        pages=pages or [],
        actors=actors if actors is not None else (["alice"] if ack else []),
        resolving_runbooks=runbooks or [],
        drill=drill,
    )


def page(who: str, when: datetime) -> PageRecord:
    """A page to ``who``."""
    return PageRecord(recipient=who, at=when, level=1)


def fixed_set() -> list[IncidentRecord]:
    """Incidents A-F of the module docstring."""
    return [
        rec(
            "INC-1",
            at(11, 2, 10),
            ack=5,
            mitigated=20,
            resolved=40,
            closed=100,
            pages=[page("alice", at(11, 2, 10, 1))],
        ),
        rec(
            "INC-2",
            at(11, 3, 2),
            severity="SEV1",
            ack=15,
            mitigated=45,
            resolved=90,
            closed=150,
            pages=[page("bob", at(11, 3, 2, 1)), page("alice", at(11, 3, 2, 6))],
        ),
        rec(
            "INC-3",
            at(11, 3, 3),
            ack=10,
            resolved=60,
            closed=120,
            pages=[page("bob", at(11, 3, 3, 1))],
        ),
        rec(
            "INC-4",
            at(11, 4, 12),
            service="payments",
            severity="SEV3",
            pages=[page("carol", at(11, 4, 12, 1))],
        ),
        rec("INC-5", at(11, 5, 9), ack=1, resolved=10, closed=20, drill=True),
        rec("INC-6", at(10, 1, 9), ack=1, resolved=10, closed=20),
    ]


def action_items() -> list[ActionItemRecord]:
    """Five items: one done, two open (one overdue), one dropped, one before the window."""
    return [
        ActionItemRecord(
            id="AI-1",
            incident_id="INC-1",
            status="done",
            created_at=at(11, 3, 0),
            done_at=at(11, 5, 0),
        ),
        ActionItemRecord(
            id="AI-2", incident_id="INC-1", status="open", created_at=at(11, 4, 0), due=at(11, 6, 0)
        ),
        ActionItemRecord(
            id="AI-3",
            incident_id="INC-2",
            status="open",
            created_at=at(11, 6, 0),
            due=at(11, 20, 0),
        ),
        ActionItemRecord(id="AI-4", incident_id="INC-2", status="dropped", created_at=at(11, 5, 0)),
        ActionItemRecord(id="AI-5", incident_id="INC-6", status="open", created_at=at(10, 1, 12)),
    ]

"""Incident metrics checked by hand on the fixed set of tests/unit/report_fixtures.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest

from tests.unit.report_fixtures import WEEK, action_items, at, fixed_set, page, rec
from worker.incident_metrics import (
    ActionItemStats,
    Window,
    WindowError,
    action_item_stats,
    build_report,
    is_out_of_hours,
    make_window,
    mtbf_gaps,
    paging_load,
    window,
)
from worker.incident_records import action_item_record, record_from_state, user_timezones
from workflows.contracts import (
    ActionItemKind,
    ActionItemPriority,
    ActionItemState,
    AlertChange,
    AlertStatus,
    IncidentState,
    IncidentStatus,
    RunSummary,
    Severity,
    TimelineEntry,
)

NY = {"alice": "America/New_York"}


def test_mtta_and_mttr_are_means_over_the_incidents_that_reached_each_point() -> None:
    report = build_report(fixed_set(), WEEK)
    overall = report.overall
    # A, B, C, D declared in the week; E is a drill, F is before the window.
    assert report.incidents == 4
    assert report.drills_excluded == 1
    assert (overall.acknowledged, overall.mitigated, overall.resolved) == (3, 2, 3)
    assert overall.mtta_s == pytest.approx((5 + 15 + 10) / 3 * 60)  # 10 min
    assert overall.mttr_mitigation_s == pytest.approx((20 + 45) / 2 * 60)  # 32.5 min
    assert overall.mttr_resolution_s == pytest.approx((40 + 90 + 60) / 3 * 60)  # 63.3 min


def test_counts_by_severity_and_service() -> None:
    report = build_report(fixed_set(), WEEK)
    by_service = {m.service: m for m in report.services}
    assert list(by_service) == ["checkout", "payments"]
    assert by_service["checkout"].by_severity == {"SEV1": 1, "SEV2": 2}
    assert by_service["payments"].by_severity == {"SEV3": 1}
    assert report.overall.by_severity == {"SEV1": 1, "SEV2": 2, "SEV3": 1}
    assert by_service["payments"].mtta_s is None  # nobody acknowledged D yet


def test_mtbf_excludes_time_in_incident() -> None:
    # A: Mon 10:00-10:40, B: Tue 02:00-03:30. Between their starts: 16 h; A lasted 40 min.
    a, b = fixed_set()[:2]
    assert mtbf_gaps([a, b]) == [16 * 3600 - 40 * 60]  # 15 h 20 min = 55200 s


def test_mtbf_gap_is_zero_when_the_next_incident_starts_during_the_last() -> None:
    # C starts at 03:00 while B runs until 03:30: the service was still in incident.
    report = build_report(fixed_set(), WEEK)
    checkout = next(m for m in report.services if m.service == "checkout")
    assert checkout.mtbf_s == pytest.approx((55200 + 0) / 2)
    assert report.overall.mtbf_s == pytest.approx(27600)  # pooled over services
    payments = next(m for m in report.services if m.service == "payments")
    assert payments.mtbf_s is None  # one incident: no gap to measure


def test_mtbf_measures_from_the_latest_end_of_overlapping_incidents() -> None:
    long = rec("INC-10", at(11, 2, 0), resolved=600)  # until 10:00
    short = rec("INC-11", at(11, 2, 1), resolved=60)  # inside the long one, ends 02:00
    after = rec("INC-12", at(11, 2, 12), resolved=10)
    # After INC-11 the service is still in INC-10 until 10:00: the gap to 12:00 is 2 h.
    assert mtbf_gaps([after, short, long]) == [0.0, 2 * 3600.0]


def test_mtbf_gap_after_an_unresolved_incident_is_zero() -> None:
    open_one = rec("INC-20", at(11, 2, 0))
    later = rec("INC-21", at(11, 3, 0), resolved=5)
    assert mtbf_gaps([open_one, later]) == [0.0]


def test_time_in_each_state_counts_open_incidents_up_to_the_end_of_the_window() -> None:
    report = build_report(fixed_set(), WEEK)
    states = {s.state: s for s in report.time_in_state}
    # D has been declared since Wed 12:00 until the window ends Mon 00:00: 4 d 12 h.
    assert states[IncidentStatus.DECLARED].total_s == 300 + 900 + 600 + 388800
    assert states[IncidentStatus.DECLARED].incidents == 4
    assert states[IncidentStatus.ACKNOWLEDGED].total_s == 900 + 1800 + 3000
    assert states[IncidentStatus.ACKNOWLEDGED].mean_s == 1900
    assert states[IncidentStatus.MITIGATED].total_s == 1200 + 2700
    assert states[IncidentStatus.RESOLVED].mean_s == 3600
    assert IncidentStatus.CLOSED not in states


def test_paging_load_counts_out_of_hours_in_the_persons_time_zone() -> None:
    rows = build_report(fixed_set(), WEEK, timezones=NY).paging
    assert [(r.person, r.pages, r.out_of_hours, r.incidents) for r in rows] == [
        # Mon 10:01 UTC is 05:01 in New York; Tue 02:06 UTC is Mon 21:06 there.
        ("alice", 2, 2, 2),
        ("bob", 2, 2, 2),  # 02:01 and 03:01 UTC
        ("carol", 1, 0, 1),  # Wed 12:01 UTC
    ]
    assert rows[0].timezone == "America/New_York"
    # Without her time zone alice's Monday 10:01 UTC page was in working hours.
    utc_rows = {r.person: r for r in paging_load(fixed_set()[:4])}
    assert utc_rows["alice"].out_of_hours == 1


@pytest.mark.parametrize(
    ("when", "zone", "late"),
    [
        (at(11, 2, 9, 0), "UTC", False),  # Monday 09:00 opens the day
        (at(11, 2, 17, 59), "UTC", False),
        (at(11, 2, 18, 0), "UTC", True),  # 18:00 closes it
        (at(11, 2, 8, 59), "UTC", True),
        (at(11, 7, 12, 0), "UTC", True),  # Saturday
        (at(11, 2, 14, 0), "America/New_York", False),  # 09:00 in New York
        (at(11, 2, 13, 59), "America/New_York", True),
        (at(11, 2, 12, 0), "Not/AZone", False),  # unknown zone reads as UTC
    ],
)
def test_out_of_hours(when: datetime, zone: str, late: bool) -> None:
    assert is_out_of_hours(when, zone) is late


def test_action_item_completion_rate_and_age() -> None:
    stats = action_item_stats(action_items(), WEEK)
    assert stats == ActionItemStats(
        total=4,
        done=1,
        dropped=1,
        open=2,
        overdue=1,  # AI-2 was due Fri 11-06
        completion_rate=1 / 3,  # dropped items leave the rate
        mean_open_age_s=(5 * 86400 + 3 * 86400) / 2,
        max_open_age_s=5 * 86400,
        mean_time_to_done_s=2 * 86400,
    )


def test_weekly_trend_has_every_week_of_the_window_even_empty_ones() -> None:
    two_weeks = Window(since=WEEK.since, until=WEEK.until + timedelta(weeks=1))
    report = build_report(fixed_set(), two_weeks)
    assert [(str(w.week_start), w.incidents) for w in report.weekly] == [
        ("2026-11-02", 4),
        ("2026-11-09", 0),
    ]
    assert report.weekly[0].mtta_s == pytest.approx(600)
    assert report.weekly[1].mtta_s is None


def test_drills_are_counted_when_asked_for() -> None:
    report = build_report(fixed_set(), WEEK, include_drills=True)
    assert report.incidents == 5
    assert report.drills_excluded == 0


def test_a_window_without_incidents_is_an_honest_empty_report() -> None:
    quiet = Window(since=at(12, 1, 0), until=at(12, 8, 0))
    report = build_report(fixed_set(), quiet)
    assert report.incidents == 0
    assert report.overall.mtta_s is None
    assert report.overall.mtbf_s is None
    assert report.services == []
    assert report.empty_reason == (
        "no incidents were declared between 2026-12-01 00:00 and 2026-12-08 00:00 UTC"
    )


def test_a_window_with_only_drills_says_they_were_left_out() -> None:
    drills = Window(since=at(11, 5, 0), until=at(11, 6, 0))
    report = build_report(fixed_set(), drills)
    assert report.empty_reason is not None
    assert report.empty_reason.endswith("(1 drill(s) left out; include them to see them)")


def test_reversed_window_is_refused_naming_both_bounds() -> None:
    with pytest.raises(WindowError) as err:
        window(at(11, 9, 0), at(11, 2, 0))
    assert str(err.value) == (
        "the window is reversed: since 2026-11-09T00:00:00+00:00 is after until "
        "2026-11-02T00:00:00+00:00"
    )


def test_empty_window_is_refused() -> None:
    with pytest.raises(WindowError, match="the window is empty: since and until are both"):
        window(at(11, 2, 0), at(11, 2, 0))


def test_window_from_user_text() -> None:
    now = at(11, 28, 12)
    assert make_window("30d", None, now) == Window(since=now - timedelta(days=30), until=now)
    assert make_window(None, None, now).since == now - timedelta(days=30)
    assert make_window("2026-11-01", "2026-11-02T06:00:00Z", now) == Window(
        since=at(11, 1, 0), until=at(11, 2, 6)
    )
    with pytest.raises(WindowError, match="reversed"):
        make_window("1d", "2d", now)  # until is before since
    with pytest.raises(WindowError, match=r"^since: 'yesterday' is neither a duration"):
        make_window("yesterday", None, now)
    with pytest.raises(WindowError, match=r"^until: '3x' is not a duration"):
        make_window("30d", "3x", now)
    with pytest.raises(WindowError, match=r"^since: '9999999d' reaches back before the year 1"):
        make_window("9999999d", None, now)


# --- records from incident state -------------------------------------------------------------


def _entry(n: int, minute: int, kind: str, text: str = "", **kw: Any) -> TimelineEntry:
    return TimelineEntry(
        id=f"e{n}",
        at=at(11, 2, 10, minute),
        kind=kind,
        text=text or kind,
        **kw,
    )


def test_record_from_state_reads_pages_alerts_notes_runs_and_transitions() -> None:
    fp = "fp-1"
    state = IncidentState(
        id="INC-7",
        title="Checkout errors",
        service="checkout",
        severity=Severity.SEV2,
        status=IncidentStatus.RESOLVED,
        summary="5xx from the payment provider",
        labels={"region": "eu-west-1"},
        declared_at=at(11, 2, 10, 0),
        acknowledged_at=at(11, 2, 10, 4),
        acknowledged_by="bob",
        mitigated_at=at(11, 2, 10, 20),
        resolved_at=at(11, 2, 10, 30),
        resolution_summary="rolled back 1.4.0",
        alerts={
            fp: AlertChange(
                fingerprint=fp,
                alertname="HighErrorRate",
                status=AlertStatus.RESOLVED,
                summary="errors",
                starts_at=at(11, 2, 9, 58),
                ends_at=at(11, 2, 10, 25),
            )
        },
        runs=[
            RunSummary(
                run_id="r1",
                workflow_id="w1",
                runbook="scale-up",
                status="failed",
                started_by="bob",
                started_at=at(11, 2, 10, 5),
            ),
            RunSummary(
                run_id="r2",
                workflow_id="w2",
                runbook="restart",
                status="succeeded",
                dry_run=True,
                started_by="bob",
                started_at=at(11, 2, 10, 6),
            ),
            RunSummary(
                run_id="r3",
                workflow_id="w3",
                runbook="rollback",
                status="succeeded",
                started_by="bob",
                started_at=at(11, 2, 10, 7),
            ),
        ],
        timeline=[
            _entry(1, 0, "declared"),
            _entry(2, 0, "alert_firing", data={"fingerprint": fp}),
            _entry(3, 1, "page", data={"kind": "paged", "user": "alice", "level": 1}),
            _entry(4, 2, "alert_resolved", data={"fingerprint": fp}),
            _entry(5, 3, "alert_firing", data={"fingerprint": fp}),
            _entry(6, 3, "alert_firing", data={"fingerprint": fp}),  # a changed summary
            _entry(7, 4, "acknowledged", actor="bob"),
            _entry(8, 5, "note", "1.4.0 is bad", actor="carol"),
            _entry(9, 6, "runbook_started", actor="fireline"),
            _entry(10, 20, "mitigated", actor="bob"),
            _entry(11, 30, "resolved", actor="bob"),
        ],
    )
    record = record_from_state(state)
    assert record.alert_names == ["HighErrorRate"]
    assert record.alerts[0].firings == 2  # fired, resolved, fired again
    assert record.pages == [page("alice", at(11, 2, 10, 1))]
    assert record.notes == ["1.4.0 is bad"]
    assert record.actors == ["bob", "carol"]  # fireline itself is not a person acting
    assert record.resolved_by == "bob"
    assert record.resolving_runbooks == ["rollback"]  # not the failed run, not the dry run
    assert [t.status for t in record.transitions] == [
        IncidentStatus.DECLARED,
        IncidentStatus.ACKNOWLEDGED,
        IncidentStatus.MITIGATED,
        IncidentStatus.RESOLVED,
    ]
    assert "rolled back 1.4.0" in record.text
    assert "1.4.0 is bad" in record.text


def test_user_time_zones_come_from_the_schedules_they_are_on() -> None:
    schedules: dict[str, dict[str, Any]] = {
        "b-secondary": {"timezone": "Europe/Berlin", "layers": [{"users": ["bob", "carol"]}]},
        "a-primary": {"timezone": "America/New_York", "layers": [{"users": ["alice", "bob"]}]},
        "broken": {"layers": [{"users": ["dave"]}]},
    }
    assert user_timezones(schedules) == {
        "alice": "America/New_York",
        "bob": "America/New_York",  # the first schedule by name wins
        "carol": "Europe/Berlin",
    }


def test_as_of_clock_is_never_read() -> None:
    # Reports depend only on their inputs: the same records and window, the same report.
    first = build_report(fixed_set(), WEEK, action_items=action_items(), timezones=NY)
    second = build_report(fixed_set(), WEEK, action_items=action_items(), timezones=NY)
    assert first == second
    assert first.until == datetime(2026, 11, 9, tzinfo=UTC)


def _item_state(status: Literal["open", "done", "dropped"]) -> ActionItemState:
    return ActionItemState(
        id="AI-9",
        postmortem_id="postmortem-INC-7",
        incident_id="INC-7",
        title="alert on connection pool saturation",
        owner="bob",
        priority=ActionItemPriority.P2,
        kind=ActionItemKind.DETECT,
        due_at=at(11, 20, 0),
        status=status,
        created_at=at(11, 3, 0),
        created_by="alice",
        assigned_at=at(11, 3, 0),
        closed_at=at(11, 5, 0) if status != "open" else None,
    )


def test_action_items_from_their_workflow_state() -> None:
    done = action_item_record(_item_state("done"))
    assert (done.id, done.incident_id, done.status) == ("AI-9", "INC-7", "done")
    assert (done.created_at, done.done_at, done.due) == (at(11, 3, 0), at(11, 5, 0), at(11, 20, 0))
    # A dropped item closed too, but it was not done.
    assert action_item_record(_item_state("dropped")).done_at is None
    stats = action_item_stats(
        [action_item_record(_item_state(s)) for s in ("open", "done", "dropped")], WEEK
    )
    assert (stats.total, stats.done, stats.open, stats.dropped) == (3, 1, 1, 1)
    assert stats.completion_rate == 0.5

"""Alert quality per alert name, noisiest first, on a small hand-made set."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.unit.report_fixtures import WEEK, at, page, rec
from worker.alert_quality import alert_quality, resolved_by_itself
from worker.incident_metrics import Window
from worker.incident_records import AlertRecord, IncidentRecord


def alert(name: str, firings: int = 1, suppressed: bool = False) -> AlertRecord:
    return AlertRecord(
        fingerprint=f"fp-{name}",
        alertname=name,
        starts_at=at(11, 2, 0),
        firings=firings,
        suppressed=suppressed,
    )


def incidents() -> list[IncidentRecord]:
    return [
        # DiskFull clears itself twice (4 and 6 minutes, nobody acts) and once needs bob.
        rec(
            "INC-1",
            at(11, 2, 3),
            resolved=4,
            resolved_by=None,
            alerts=[alert("DiskFull")],
            pages=[page("alice", at(11, 2, 3, 1))],  # 03:01 UTC: out of hours
        ),
        rec("INC-2", at(11, 3, 3), resolved=6, resolved_by=None, alerts=[alert("DiskFull")]),
        rec(
            "INC-3",
            at(11, 4, 10),
            ack=3,
            acknowledged_by="bob",
            resolved=60,
            resolved_by="bob",
            actors=["bob"],
            alerts=[alert("DiskFull")],
        ),
        # HighErrorRate: handled once; once it cleared fast but carol wrote a note first.
        rec(
            "INC-4",
            at(11, 4, 23),
            ack=2,
            resolved=30,
            alerts=[alert("HighErrorRate"), alert("Muted", suppressed=True)],
            pages=[page("alice", at(11, 4, 23, 1))],
        ),
        rec(
            "INC-5",
            at(11, 5, 12),
            resolved=3,
            resolved_by=None,
            actors=["carol"],
            alerts=[alert("HighErrorRate")],
        ),
        # FlappyCPU flaps three times, pages bob, nobody acknowledges; clears after 30 min.
        rec(
            "INC-6",
            at(11, 6, 12),
            resolved=30,
            resolved_by=None,
            alerts=[alert("FlappyCPU", firings=3)],
            pages=[page("bob", at(11, 6, 12, 1)), page("bob", at(11, 6, 12, 6))],
        ),
        # A drill: left out.
        rec(
            "INC-7",
            at(11, 6, 13),
            resolved=1,
            resolved_by=None,
            alerts=[alert("DiskFull")],
            drill=True,
        ),
    ]


def test_per_alert_counts_noisiest_first() -> None:
    report = alert_quality(incidents(), WEEK)
    assert report.incidents == 6
    rows = {a.alertname: a for a in report.alerts}
    assert [a.alertname for a in report.alerts] == [
        "DiskFull",  # 2 self-resolved
        "FlappyCPU",  # 1 incident nobody acknowledged, fired 3 times
        "HighErrorRate",  # 1 incident nobody acknowledged, fired twice
        "Muted",
    ]
    disk = rows["DiskFull"]
    assert (disk.fired, disk.incidents, disk.paged, disk.pages, disk.pages_out_of_hours) == (
        3,
        3,
        1,
        1,
        1,
    )
    assert (disk.acknowledged, disk.self_resolved) == (1, 2)
    assert disk.noise == pytest.approx(2 / 3)
    assert disk.advice == (
        "resolves by itself in 2 of 3 incidents: lengthen its `for:`, raise its threshold, "
        "or delete it"
    )
    flappy = rows["FlappyCPU"]
    assert (flappy.fired, flappy.paged, flappy.pages, flappy.acknowledged) == (3, 1, 2, 0)
    assert flappy.self_resolved == 0  # 30 minutes is not "within minutes"
    assert flappy.advice == "paged in 1 incidents, never acknowledged: is it actionable?"
    errors = rows["HighErrorRate"]
    assert (errors.incidents, errors.acknowledged, errors.self_resolved) == (2, 1, 0)
    assert errors.advice == ""
    muted = rows["Muted"]
    assert (muted.fired, muted.suppressed, muted.incidents) == (1, 1, 0)
    assert muted.advice == "always suppressed when it fires: does it still need to exist?"


def test_quick_sets_what_resolving_by_itself_means() -> None:
    report = alert_quality(incidents(), WEEK, quick=timedelta(minutes=5))
    disk = next(a for a in report.alerts if a.alertname == "DiskFull")
    assert disk.self_resolved == 1  # the 6-minute one no longer counts
    assert report.quick_s == 300


def test_someone_acting_means_it_did_not_resolve_by_itself() -> None:
    noted = incidents()[4]
    assert noted.resolved_at is not None
    assert noted.resolved_by is None
    assert not resolved_by_itself(noted)
    assert resolved_by_itself(incidents()[0])


def test_drills_only_when_asked() -> None:
    report = alert_quality(incidents(), WEEK, include_drills=True)
    disk = next(a for a in report.alerts if a.alertname == "DiskFull")
    assert (disk.incidents, disk.self_resolved) == (4, 3)


def test_an_empty_window_says_so() -> None:
    report = alert_quality(incidents(), Window(since=at(12, 1, 0), until=at(12, 2, 0)))
    assert report.alerts == []
    assert report.empty_reason == (
        "no alerts reached an incident between 2026-12-01 00:00 and 2026-12-02 00:00 UTC"
    )

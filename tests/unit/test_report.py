"""Report rendering: terminal tables, PNG charts, Prometheus gauges, Grafana, CLI flags."""

from __future__ import annotations

import argparse
import json
import re
import struct
from pathlib import Path

import pytest

from tests.unit.report_fixtures import WEEK, action_items, at, fixed_set
from worker.alert_quality import alert_quality
from worker.cli_report import add_incident_search, add_parsers
from worker.incident_metrics import MetricsReport, Window, build_report
from worker.report import alerts_chart, dur, render_alerts, render_summary, write_charts
from worker.report_metrics import ReportGauges

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "fireline-dashboard.json"
NY = {"alice": "America/New_York"}


def report() -> MetricsReport:
    return build_report(fixed_set(), WEEK, action_items=action_items(), timezones=NY)


def empty_report() -> MetricsReport:
    return build_report(fixed_set(), Window(since=at(12, 1, 0), until=at(12, 8, 0)))


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0, "0s"), (600, "10m"), (3800, "1h3m20s"), (97650, "1d3h7m30s")],
)
def test_durations_read_like_operators_write_them(seconds: float | None, text: str) -> None:
    assert dur(seconds) == text


def test_summary_tables_show_each_incident_and_the_means() -> None:
    text = render_summary(report())
    assert text.startswith(
        "incidents declared 2026-11-02 00:00 → 2026-11-09 00:00 UTC: 4 (1 drill(s) left out)"
    )
    lines = text.splitlines()
    overall = next(line for line in lines if line.startswith("all "))
    # incidents, SEV1-4, MTTA 10 min, MTTR 32m30s and 1h3m20s, MTBF 7h40m
    assert overall.split() == ["all", "4", "1", "2", "1", "0", "10m", "32m30s", "1h3m20s", "7h40m"]
    inc2 = next(line for line in lines if line.startswith("INC-2 "))
    assert inc2.split()[:8] == [
        "INC-2",
        "SEV1",
        "checkout",
        "closed",
        "2026-11-03",
        "02:00",
        "15m",
        "45m",
    ]
    assert "PAGING LOAD" in text
    alice = next(line for line in lines if line.startswith("alice "))
    assert alice.split() == ["alice", "America/New_York", "2", "2", "2"]
    items = lines[lines.index("ACTION ITEMS") + 2].split()
    assert items[:6] == ["4", "1", "2", "1", "1", "33%"]


def test_an_empty_report_says_why_instead_of_printing_zeros() -> None:
    text = render_summary(empty_report())
    assert "no incidents were declared between 2026-12-01 00:00 and 2026-12-08 00:00 UTC" in text
    assert "RELIABILITY" not in text


def test_charts_are_written_as_valid_pngs(tmp_path: Path) -> None:
    paths = write_charts(report(), tmp_path / "charts")
    assert [p.name for p in paths] == [
        "mtta-mttr-trend.png",
        "time-to-ack.png",
        "time-to-resolve.png",
        "incidents-by-service.png",
        "paging-load.png",
    ]
    for path in paths:
        assert png_size(path) == (800, 450)
        assert path.stat().st_size > 5_000  # drawn, not blank


def test_charts_of_an_empty_window_are_still_pngs(tmp_path: Path) -> None:
    for path in write_charts(empty_report(), tmp_path):
        assert png_size(path) == (800, 450)


def test_alert_report_text_and_chart(tmp_path: Path) -> None:
    quality = alert_quality(fixed_set(), WEEK)
    text = render_alerts(quality)
    assert text.splitlines()[0] == (
        "alert quality for incidents declared 2026-11-02 00:00 → 2026-11-09 00:00 UTC "
        "(4 incidents; self-resolved = cleared within 10m with nobody acting)"
    )
    assert "no alerts reached an incident" in text  # the fixed set has no alerts attached
    assert png_size(alerts_chart(quality, tmp_path / "alerts.png")) == (800, 450)


def test_gauges_expose_the_report() -> None:
    gauges = ReportGauges()
    gauges.update(report(), alert_quality(fixed_set(), WEEK), at(11, 9, 0))
    text = gauges.render()
    assert 'fireline_incident_mtta_seconds{service="__all__"} 600\n' in text
    assert 'fireline_incident_mtta_seconds{service="checkout"} 600\n' in text
    assert 'fireline_incident_mtbf_seconds{service="checkout"} 27600\n' in text
    # One incident: MTBF unknown, so no series at all rather than a made-up number.
    assert 'fireline_incident_mtbf_seconds{service="payments"}' not in text
    assert 'fireline_incidents{service="checkout",severity="SEV2"} 2\n' in text
    assert 'fireline_pages_out_of_hours{person="alice"} 2\n' in text
    assert "fireline_report_window_seconds 604800\n" in text
    assert "# TYPE fireline_action_items_completion_ratio gauge" in text
    # A later, emptier report removes the series the old one had.
    gauges.update(empty_report(), alert_quality([], WEEK), at(12, 8, 0))
    assert gauges.mtta.value("checkout") is None


def test_the_grafana_dashboard_uses_only_exposed_metric_names() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "fireline-incidents"
    exposed = {g.name for g in ReportGauges().all()}
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used |= set(re.findall(r"fireline_[a-z_]+", target["expr"]))
    variable = dashboard["templating"]["list"][1]["definition"]
    used |= set(re.findall(r"fireline_[a-z_]+", variable))
    assert used <= exposed, used - exposed
    assert len(used) >= 12
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def parser() -> argparse.ArgumentParser:
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--url", default="http://fireline")
    client.add_argument("--json", action="store_true")
    top = argparse.ArgumentParser(prog="fireline")
    sub = top.add_subparsers(dest="command", required=True)
    add_parsers(sub, client)
    inc = sub.add_parser("incident")
    add_incident_search(inc.add_subparsers(dest="incident_command", required=True), client)
    return top


def test_cli_report_flags() -> None:
    args = parser().parse_args(["report", "--since", "7d", "--charts", "out"])
    assert (args.func.__name__, args.since, args.until, args.charts) == (
        "cmd_report",
        "7d",
        None,
        Path("out"),
    )
    args = parser().parse_args(["report", "--since", "7d", "alerts", "--quick", "5m"])
    # The flag given before `alerts` survives the nested parser's defaults.
    assert (args.func.__name__, args.since, args.quick) == ("cmd_report_alerts", "7d", "5m")
    args = parser().parse_args(["report", "alerts", "--since", "1d"])
    assert args.since == "1d"


def test_cli_search_flags() -> None:
    args = parser().parse_args(
        ["incident", "search", "payment", "timeout", "--label", "region=eu", "--alert", "X"]
    )
    assert (args.words, args.label, args.alert) == (["payment", "timeout"], ["region=eu"], ["X"])
    assert args.func.__name__ == "cmd_incident_search"


def test_cli_refuses_a_reversed_window_before_calling_the_server() -> None:
    from worker.cli import EXIT_USAGE, CliError

    args = parser().parse_args(["report", "--since", "1d", "--until", "2d"])
    with pytest.raises(CliError) as err:
        args.func(args)
    assert err.value.code == EXIT_USAGE
    assert str(err.value).startswith("the window is reversed: since ")

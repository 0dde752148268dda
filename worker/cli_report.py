"""``fireline report``, ``fireline report alerts`` and ``fireline incident search|similar``.

Like every incident command these talk to the HTTP API; the charts are drawn here, from
the report's JSON, so they land on the reader's disk. Everything but argparse is imported
inside the handlers: ``worker.cli`` imports this module to build its parser, and the report
models pull in Temporal and matplotlib (1.5 s) that other commands should not wait for.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from activities.contracts import SimilarIncidents

_TIME = "a duration back from now (30d, 12h) or an ISO time (2026-11-01)"


def add_parsers(sub: Any, client_parent: argparse.ArgumentParser) -> None:
    """Add ``report`` (with ``report alerts``) to the top-level subparsers ``sub``."""
    text = "incident metrics: MTTA, MTTR, MTBF, counts, time in state, paging load"
    report = sub.add_parser("report", parents=[client_parent], help=text, description=text)
    _report_flags(report, False)
    report.set_defaults(func=cmd_report)
    rsub = report.add_subparsers(dest="report_command", metavar="KIND")
    text = "alert quality: which alerts fire, page, and resolve by themselves (noisiest first)"
    alerts = rsub.add_parser("alerts", parents=[client_parent], help=text, description=text)
    _report_flags(alerts, True)
    alerts.add_argument(
        "--quick",
        default="10m",
        help="'resolved by itself' means cleared within this with nobody acting (default 10m)",
    )
    alerts.set_defaults(func=cmd_report_alerts)


def _report_flags(p: argparse.ArgumentParser, nested: bool) -> None:
    # A nested parser's defaults would overwrite flags given before its name
    # (`report --since 7d alerts`); SUPPRESS keeps those.
    default: Any = argparse.SUPPRESS if nested else None
    p.add_argument("--since", default=default, help=f"{_TIME}; default 30d")
    p.add_argument("--until", default=default, help=f"{_TIME}; default now")
    p.add_argument("--charts", type=Path, metavar="DIR", default=default, help="write PNG charts")
    p.add_argument(
        "--drills",
        action="store_true",
        default=default if nested else False,
        help="include drills (left out by default)",
    )


def add_incident_search(isub: Any, client_parent: argparse.ArgumentParser) -> None:
    """Add ``search`` and ``similar`` to the ``incident`` subparsers ``isub``."""
    text = "search past incidents and postmortems by service, labels, alerts, words and time"
    p = isub.add_parser("search", parents=[client_parent], help=text, description=text)
    p.add_argument("words", nargs="*", help="every word must appear")
    p.add_argument("--service")
    p.add_argument("--label", action="append", metavar="KEY=VALUE", help="repeatable; all match")
    p.add_argument("--alert", action="append", metavar="NAME", help="repeatable; any matches")
    p.add_argument("--since", help=_TIME)
    p.add_argument("--until", help=_TIME)
    p.add_argument("--drills", action="store_true", help="include drills")
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=cmd_incident_search)
    text = "the past incidents most like this one, why, and the runbooks that resolved them"
    p = isub.add_parser("similar", parents=[client_parent], help=text, description=text)
    p.add_argument("id", help="incident id, e.g. INC-42")
    p.add_argument("--limit", type=int, default=3)
    p.set_defaults(func=cmd_incident_similar)


# --- handlers -------------------------------------------------------------------------------


def _check_window(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Refuse a reversed or unreadable window here, before asking the server."""
    from worker import cli
    from worker.incident_metrics import WindowError, make_window

    since, until = getattr(args, "since", None), getattr(args, "until", None)
    try:
        make_window(since, until, datetime.now(UTC))
    except WindowError as exc:
        raise cli.CliError(str(exc), cli.EXIT_USAGE) from None
    params = [("since", since)] if since else []
    if until:
        params.append(("until", until))
    if getattr(args, "drills", False):
        params.append(("drills", "true"))
    return params


def _api(args: argparse.Namespace) -> Any:
    from worker import cli

    return cli.ApiClient(args.url, args.token, args.as_user)


def _charts_dir(args: argparse.Namespace) -> Path | None:
    from worker import cli

    directory: Path | None = getattr(args, "charts", None)
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cli.CliError(f"--charts {directory}: {exc.strerror}", cli.EXIT_USAGE) from None
    return directory


def cmd_report(args: argparse.Namespace) -> int:
    """Print the summary report; write charts with --charts DIR."""
    from worker import cli, report
    from worker.incident_metrics import MetricsReport

    params = _check_window(args)
    charts = _charts_dir(args)
    body = _api(args).request("GET", "/v1/reports/summary", params=params)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(report.render_summary(MetricsReport.model_validate(body)))
    if charts is not None:
        for path in report.write_charts(MetricsReport.model_validate(body), charts):
            print(f"wrote {path}")
    return cli.EXIT_OK


def cmd_report_alerts(args: argparse.Namespace) -> int:
    """Print alert quality, noisiest first; --charts DIR writes the chart too."""
    from worker import cli, report
    from worker.alert_quality import AlertQualityReport

    params = _check_window(args)
    params.append(("quick", args.quick))
    charts = _charts_dir(args)
    body = _api(args).request("GET", "/v1/reports/alerts", params=params)
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(report.render_alerts(AlertQualityReport.model_validate(body)))
    if charts is not None:
        path = report.alerts_chart(AlertQualityReport.model_validate(body), charts / "alerts.png")
        print(f"wrote {path}")
    return cli.EXIT_OK


def render_hits(rows: list[dict[str, Any]]) -> str:
    """The search result table."""
    from worker import cli

    if not rows:
        return "no incidents match"
    return cli.table(
        ["id", "sev", "status", "service", "declared", "alerts", "resolved with", "title"],
        [
            [
                r["id"],
                r["severity"],
                r["status"],
                r["service"],
                datetime.fromisoformat(r["declared_at"]).strftime("%Y-%m-%d %H:%M"),
                ",".join(r.get("alert_names") or []) or "-",
                ",".join(r.get("runbooks") or []) or "-",
                r["title"],
            ]
            for r in rows
        ],
    )


def cmd_incident_search(args: argparse.Namespace) -> int:
    """Search past incidents."""
    from worker import cli

    params: list[tuple[str, str]] = []
    if args.since and args.until:
        _check_window(args)
    for name in ("service", "since", "until"):
        if getattr(args, name):
            params.append((name, getattr(args, name)))
    for item in args.label or []:
        key, value = cli._label(item)
        params.append(("label", f"{key}={value}"))
    params += [("alert", a) for a in args.alert or []]
    if args.words:
        params.append(("q", " ".join(args.words)))
    if args.drills:
        params.append(("drills", "true"))
    params.append(("limit", str(args.limit)))
    rows = _api(args).request("GET", "/v1/incidents/search", params=params)
    print(json.dumps(rows, indent=2) if args.json else render_hits(rows))
    return cli.EXIT_OK


def render_similar(found: SimilarIncidents) -> str:
    """Suggestions, one block each."""
    if not found.suggestions:
        return f"no similar past incidents (compared {found.compared})"
    lines = []
    for s in found.suggestions:
        lines.append(f"{s.incident_id}  score {s.score:.2f}  {s.severity} {s.service}: {s.title}")
        lines.append(f"  why: {s.explanation}")
        if s.runbooks:
            lines.append("  resolved with runbook: " + ", ".join(s.runbooks))
        if s.resolution_summary:
            lines.append(f"  resolution: {s.resolution_summary}")
    return "\n".join(lines)


def cmd_incident_similar(args: argparse.Namespace) -> int:
    """Show the past incidents most like one incident."""
    from activities.contracts import SimilarIncidents
    from worker import cli

    body = _api(args).request(
        "GET", f"/v1/incidents/{args.id}/similar", params=[("limit", str(args.limit))]
    )
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        print(render_similar(SimilarIncidents.model_validate(body)))
    return cli.EXIT_OK

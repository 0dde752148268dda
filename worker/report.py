"""Reports people read: text tables for the terminal, PNG charts they would rather look at.

Renders ``MetricsReport`` and ``AlertQualityReport`` (from ``worker.incident_metrics`` and
``worker.alert_quality``); it computes nothing itself, so the CLI can draw the charts
from the API's JSON. Charts use matplotlib's object API (``Figure`` + Agg canvas), never
pyplot's global state, so they work headless and in threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from worker.alert_quality import AlertQualityReport
from worker.cli import table
from worker.incident_metrics import MetricsReport
from workflows.durations import format_duration

# The most recent incidents listed one by one; the rest are in the JSON output.
INCIDENT_ROWS = 20
SEVERITIES = ("SEV1", "SEV2", "SEV3", "SEV4")
_COLOURS = {"SEV1": "#b2182b", "SEV2": "#ef8a62", "SEV3": "#67a9cf", "SEV4": "#d1e5f0"}


def dur(seconds: float | None) -> str:
    """``1h5m`` for a number of seconds; ``-`` when unknown."""
    if seconds is None:
        return "-"
    return format_duration(timedelta(seconds=round(seconds)))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _window(since_text: str, until_text: str) -> str:
    return f"{since_text} → {until_text} UTC"


def render_summary(report: MetricsReport) -> str:
    """The terminal report: reliability per service, incidents, states, paging, follow-up."""
    span = _window(f"{report.since:%Y-%m-%d %H:%M}", f"{report.until:%Y-%m-%d %H:%M}")
    head = f"incidents declared {span}: {report.incidents}"
    if report.drills_excluded:
        head += f" ({report.drills_excluded} drill(s) left out)"
    out = [head]
    if report.skipped:
        out.append(
            f"could not read {len(report.skipped)} incident(s): "
            + "; ".join(f"{k}: {v}" for k, v in sorted(report.skipped.items()))
        )
    if report.empty_reason:
        out.append(report.empty_reason)
        out += ["", _action_items(report)]
        return "\n".join(out)
    rows = [report.overall, *report.services] if len(report.services) > 1 else report.services
    out += [
        "",
        "RELIABILITY (MTBF: mean gap between a service's incidents, time in incident excluded)",
        table(
            [
                "service",
                "incidents",
                *SEVERITIES,
                "mtta",
                "mttr mitigated",
                "mttr resolved",
                "mtbf",
            ],
            [
                [
                    m.service,
                    str(m.incidents),
                    *(str(m.by_severity.get(s, 0)) for s in SEVERITIES),
                    dur(m.mtta_s),
                    dur(m.mttr_mitigation_s),
                    dur(m.mttr_resolution_s),
                    dur(m.mtbf_s),
                ]
                for m in rows
            ],
        ),
    ]
    recent = report.incident_times[-INCIDENT_ROWS:]
    out += [
        "",
        "INCIDENTS"
        + (
            f" (latest {len(recent)} of {report.incidents})"
            if len(recent) < report.incidents
            else ""
        ),
        table(
            [
                "id",
                "sev",
                "service",
                "status",
                "declared",
                "to ack",
                "to mitigate",
                "to resolve",
                "title",
            ],
            [
                [
                    t.id,
                    t.severity,
                    t.service,
                    t.status.value,
                    f"{t.declared_at:%Y-%m-%d %H:%M}",
                    dur(t.time_to_ack_s),
                    dur(t.time_to_mitigate_s),
                    dur(t.time_to_resolve_s),
                    t.title,
                ]
                for t in recent
            ],
        ),
        "",
        "TIME IN STATE",
        table(
            ["state", "incidents", "total", "mean"],
            [
                [s.state.value, str(s.incidents), dur(s.total_s), dur(s.mean_s)]
                for s in report.time_in_state
            ],
        ),
        "",
        "PAGING LOAD (out of hours: outside 09:00-18:00 Mon-Fri, person's time zone)",
        table(
            ["person", "time zone", "pages", "out of hours", "incidents"],
            [
                [p.person, p.timezone, str(p.pages), str(p.out_of_hours), str(p.incidents)]
                for p in report.paging
            ],
        )
        if report.paging
        else "nobody was paged",
        "",
        _action_items(report),
        "",
        "WEEKLY TREND (weeks start Monday, UTC)",
        table(
            ["week", "incidents", "mtta", "mttr mitigated", "mttr resolved"],
            [
                [
                    f"{w.week_start:%Y-%m-%d}",
                    str(w.incidents),
                    dur(w.mtta_s),
                    dur(w.mttr_mitigation_s),
                    dur(w.mttr_resolution_s),
                ]
                for w in report.weekly
            ],
        ),
    ]
    return "\n".join(out)


def _action_items(report: MetricsReport) -> str:
    a = report.action_items
    if not a.total:
        return "ACTION ITEMS: none created in this window"
    return "ACTION ITEMS\n" + table(
        [
            "total",
            "done",
            "open",
            "overdue",
            "dropped",
            "completion",
            "mean open age",
            "oldest open",
            "mean time to done",
        ],
        [
            [
                str(a.total),
                str(a.done),
                str(a.open),
                str(a.overdue),
                str(a.dropped),
                _pct(a.completion_rate),
                dur(a.mean_open_age_s),
                dur(a.max_open_age_s),
                dur(a.mean_time_to_done_s),
            ]
        ],
    )


def render_alerts(report: AlertQualityReport) -> str:
    """``fireline report alerts``: noisiest first, with advice."""
    span = _window(f"{report.since:%Y-%m-%d %H:%M}", f"{report.until:%Y-%m-%d %H:%M}")
    head = (
        f"alert quality for incidents declared {span} ({report.incidents} incidents; "
        f"self-resolved = cleared within {dur(report.quick_s)} with nobody acting)"
    )
    if report.empty_reason:
        return f"{head}\n{report.empty_reason}"
    rows = [
        [
            a.alertname,
            str(a.fired),
            str(a.suppressed),
            str(a.incidents),
            str(a.paged),
            str(a.pages_out_of_hours),
            str(a.acknowledged),
            str(a.self_resolved),
            _pct(a.noise),
            a.advice,
        ]
        for a in report.alerts
    ]
    return (
        head
        + "\n"
        + table(
            [
                "alert",
                "fired",
                "suppressed",
                "incidents",
                "paged",
                "pages out of hours",
                "acked",
                "self-resolved",
                "noise",
                "advice",
            ],
            rows,
        )
    )


# --- charts -------------------------------------------------------------------------------


def _figure(width: float = 8.0, height: float = 4.5) -> tuple[Figure, Axes]:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    return fig, ax


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=12)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _minutes(values: Sequence[float | None]) -> list[float]:
    return [v / 60 if v is not None else float("nan") for v in values]


def trend_chart(report: MetricsReport, path: Path) -> Path:
    """Weekly MTTA and MTTR lines (minutes) over incident-count bars."""
    fig, ax = _figure()
    weeks = report.weekly
    ax.set_title("MTTA and MTTR per week")
    if not report.incidents or not weeks:
        _no_data(ax, report.empty_reason or "no incidents in this window")
        return _save(fig, path)
    x = list(range(len(weeks)))
    counts = ax.twinx()
    counts.bar(x, [w.incidents for w in weeks], color="#dddddd", label="incidents", zorder=0)
    counts.set_ylabel("incidents")
    counts.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_zorder(counts.get_zorder() + 1)
    ax.patch.set_visible(False)
    for values, label, style in (
        ([w.mtta_s for w in weeks], "MTTA", "o-"),
        ([w.mttr_mitigation_s for w in weeks], "MTTR to mitigation", "s-"),
        ([w.mttr_resolution_s for w in weeks], "MTTR to resolution", "^-"),
    ):
        ax.plot(x, _minutes(values), style, label=label)
    ax.set_xticks(x, [f"{w.week_start:%m-%d}" for w in weeks], rotation=45)
    ax.set_xlabel("week starting (UTC)")
    ax.set_ylabel("minutes")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return _save(fig, path)


def histogram_chart(values: Sequence[float | None], title: str, path: Path) -> Path:
    """Histogram of durations in minutes, with the median marked."""
    fig, ax = _figure()
    ax.set_title(title)
    minutes = sorted(v / 60 for v in values if v is not None)
    if not minutes:
        _no_data(ax, "no incidents with this time in the window")
        return _save(fig, path)
    ax.hist(minutes, bins=min(20, max(5, len(minutes))), color="#4393c3", edgecolor="white")
    median = minutes[len(minutes) // 2]
    ax.axvline(median, color="#b2182b", linestyle="--", label=f"median {median:.1f} min")
    ax.set_xlabel("minutes")
    ax.set_ylabel("incidents")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return _save(fig, path)


def services_chart(report: MetricsReport, path: Path) -> Path:
    """Incidents per service, stacked by severity, most first."""
    fig, ax = _figure()
    ax.set_title("Incidents per service")
    services = sorted(report.services, key=lambda m: (m.incidents, m.service))
    if not services:
        _no_data(ax, report.empty_reason or "no incidents in this window")
        return _save(fig, path)
    names = [m.service for m in services]
    left = [0] * len(services)
    for sev in SEVERITIES:
        counts = [m.by_severity.get(sev, 0) for m in services]
        if any(counts):
            ax.barh(names, counts, left=left, label=sev, color=_COLOURS[sev])
            left = [a + b for a, b in zip(left, counts, strict=True)]
    ax.set_xlabel("incidents")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return _save(fig, path)


def paging_chart(report: MetricsReport, path: Path) -> Path:
    """Pages per person, out-of-hours pages highlighted."""
    fig, ax = _figure()
    ax.set_title("Pages per person")
    people = sorted(report.paging, key=lambda p: (p.pages, p.person))
    if not people:
        _no_data(ax, "nobody was paged in this window")
        return _save(fig, path)
    names = [p.person for p in people]
    in_hours = [p.pages - p.out_of_hours for p in people]
    ax.barh(names, in_hours, label="working hours", color="#92c5de")
    ax.barh(
        names,
        [p.out_of_hours for p in people],
        left=in_hours,
        label="out of hours",
        color="#b2182b",
    )
    ax.set_xlabel("pages")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend()
    return _save(fig, path)


def write_charts(report: MetricsReport, directory: Path) -> list[Path]:
    """Every chart of the summary report as PNG files in ``directory`` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    times = report.incident_times
    return [
        trend_chart(report, directory / "mtta-mttr-trend.png"),
        histogram_chart(
            [t.time_to_ack_s for t in times], "Time to acknowledge", directory / "time-to-ack.png"
        ),
        histogram_chart(
            [t.time_to_resolve_s for t in times],
            "Time to resolve",
            directory / "time-to-resolve.png",
        ),
        services_chart(report, directory / "incidents-by-service.png"),
        paging_chart(report, directory / "paging-load.png"),
    ]


def alerts_chart(report: AlertQualityReport, path: Path, top: int = 15) -> Path:
    """The noisiest alerts: incidents each led to, split into self-resolved and the rest."""
    fig, ax = _figure()
    ax.set_title("Noisiest alerts (incidents they led to)")
    rows = list(reversed(report.alerts[:top]))
    if not rows:
        _no_data(ax, report.empty_reason or "no alerts in this window")
        return _save(fig, path)
    names = [a.alertname for a in rows]
    noisy = [a.self_resolved for a in rows]
    ax.barh(names, noisy, label="resolved by itself", color="#b2182b")
    ax.barh(
        names,
        [a.incidents - a.self_resolved for a in rows],
        left=noisy,
        label="someone acted",
        color="#92c5de",
    )
    ax.set_xlabel("incidents")
    ax.legend()
    return _save(fig, path)

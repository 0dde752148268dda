"""The incident report as Prometheus gauges, for ``/metrics`` and the Grafana dashboard.

The figures are those of ``fireline report`` over a rolling window (default 30 days),
recomputed by ``ReportMetricsRefresher`` every few minutes rather than on each scrape:
a report reads every incident of the window, far too slow for a scrape. Series of an
unknown value (MTBF of a service with one incident) are left out, not written as NaN.
The overall figures carry ``service="__all__"`` (no real service can be named that way
by mistake, and Grafana can pick it out with one matcher).

Names (all gauges)::

    fireline_report_window_seconds
    fireline_report_generated_timestamp_seconds
    fireline_incidents{service,severity}
    fireline_incident_mtta_seconds{service}
    fireline_incident_mttr_mitigation_seconds{service}
    fireline_incident_mttr_resolution_seconds{service}
    fireline_incident_mtbf_seconds{service}
    fireline_incident_state_seconds_mean{state}
    fireline_pages{person}
    fireline_pages_out_of_hours{person}
    fireline_action_items{status}
    fireline_action_items_completion_ratio
    fireline_action_items_open_age_seconds_max
    fireline_alert_incidents{alertname}
    fireline_alert_self_resolved{alertname}
    fireline_alert_noise_ratio{alertname}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from worker.alert_quality import AlertQualityReport, alert_quality
from worker.errors import FirelineError
from worker.incident_metrics import MetricsReport, ServiceMetrics, build_report, window
from worker.incident_records import RecordLoader
from worker.metrics import Gauge

log = logging.getLogger("fireline.report_metrics")

ALL = "__all__"


class ReportGauges:
    """Every report gauge; ``update`` swaps in a new report's figures."""

    def __init__(self) -> None:
        g = Gauge
        self.window = g("fireline_report_window_seconds", "Length of the report window.")
        self.generated = g(
            "fireline_report_generated_timestamp_seconds", "When the figures were computed."
        )
        self.incidents = g(
            "fireline_incidents",
            "Incidents declared in the window (drills excluded).",
            ("service", "severity"),
        )
        self.mtta = g("fireline_incident_mtta_seconds", "Mean time to acknowledge.", ("service",))
        self.mttr_mitigation = g(
            "fireline_incident_mttr_mitigation_seconds", "Mean time to mitigate.", ("service",)
        )
        self.mttr_resolution = g(
            "fireline_incident_mttr_resolution_seconds", "Mean time to resolve.", ("service",)
        )
        self.mtbf = g(
            "fireline_incident_mtbf_seconds",
            "Mean time between a service's incidents, time in incident excluded.",
            ("service",),
        )
        self.state = g(
            "fireline_incident_state_seconds_mean",
            "Mean time an incident spent in each state.",
            ("state",),
        )
        self.pages = g("fireline_pages", "Pages sent to each person.", ("person",))
        self.pages_late = g(
            "fireline_pages_out_of_hours",
            "Pages outside 09:00-18:00 Mon-Fri in the person's time zone.",
            ("person",),
        )
        self.items = g("fireline_action_items", "Action items by status.", ("status",))
        self.items_rate = g(
            "fireline_action_items_completion_ratio", "Done / (all - dropped) action items."
        )
        self.items_age = g(
            "fireline_action_items_open_age_seconds_max", "Age of the oldest open action item."
        )
        self.alert_incidents = g(
            "fireline_alert_incidents", "Incidents each alert led to.", ("alertname",)
        )
        self.alert_self_resolved = g(
            "fireline_alert_self_resolved",
            "Incidents of each alert that resolved by themselves with nobody acting.",
            ("alertname",),
        )
        self.alert_noise = g(
            "fireline_alert_noise_ratio", "Self-resolved / incidents per alert.", ("alertname",)
        )

    def all(self) -> list[Gauge]:
        """Every gauge, in exposition order."""
        return [v for v in vars(self).values() if isinstance(v, Gauge)]

    def update(self, report: MetricsReport, alerts: AlertQualityReport, at: datetime) -> None:
        """Replace every series with ``report``'s and ``alerts``' figures."""
        self.window.replace({(): (report.until - report.since).total_seconds()})
        self.generated.replace({(): at.timestamp()})
        self.incidents.replace(
            {
                (m.service, sev): float(count)
                for m in report.services
                for sev, count in m.by_severity.items()
            }
        )
        rows: list[ServiceMetrics] = [report.overall.model_copy(update={"service": ALL})]
        rows += report.services
        self.mtta.replace({(m.service,): m.mtta_s for m in rows})
        self.mttr_mitigation.replace({(m.service,): m.mttr_mitigation_s for m in rows})
        self.mttr_resolution.replace({(m.service,): m.mttr_resolution_s for m in rows})
        self.mtbf.replace({(m.service,): m.mtbf_s for m in rows})
        self.state.replace({(s.state.value,): s.mean_s for s in report.time_in_state})
        self.pages.replace({(p.person,): float(p.pages) for p in report.paging})
        self.pages_late.replace({(p.person,): float(p.out_of_hours) for p in report.paging})
        a = report.action_items
        self.items.replace(
            {
                ("done",): float(a.done),
                ("open",): float(a.open),
                ("overdue",): float(a.overdue),
                ("dropped",): float(a.dropped),
            }
        )
        self.items_rate.replace({(): a.completion_rate})
        self.items_age.replace({(): a.max_open_age_s})
        self.alert_incidents.replace({(s.alertname,): float(s.incidents) for s in alerts.alerts})
        self.alert_self_resolved.replace(
            {(s.alertname,): float(s.self_resolved) for s in alerts.alerts}
        )
        self.alert_noise.replace({(s.alertname,): s.noise for s in alerts.alerts})

    def render(self) -> str:
        """The exposition of every gauge (append to ``Registry.render()``)."""
        return "\n".join(g.render() for g in self.all()) + "\n"


class ReportMetricsRefresher:
    """Recomputes the gauges over a rolling window, every ``interval``.

    Run ``run()`` as a background task of the API process (its lifespan); ``refresh()``
    computes once (tests, or a first fill at start). A failed refresh keeps the previous
    figures and is logged: the dashboard goes stale (``generated`` shows it), not blank.
    """

    def __init__(
        self,
        loader: RecordLoader,
        gauges: ReportGauges,
        *,
        timezones: Mapping[str, str] | None = None,
        span: timedelta = timedelta(days=30),
        interval: timedelta = timedelta(minutes=5),
    ) -> None:
        self.loader = loader
        self.gauges = gauges
        self.timezones = dict(timezones or {})
        self.span = span
        self.interval = interval

    async def refresh(self, now: datetime | None = None) -> MetricsReport:
        """Compute the report for [now - span, now) and publish it."""
        at = now or datetime.now(UTC)
        win = window(at - self.span, at)
        loaded = await self.loader.load(win.since, win.until)
        items = await self.loader.action_items(win.since, win.until)
        report = build_report(
            loaded.records,
            win,
            action_items=items,
            timezones=self.timezones,
            skipped=loaded.skipped,
        )
        alerts = alert_quality(loaded.records, win, timezones=self.timezones)
        self.gauges.update(report, alerts, at)
        return report

    async def run(self) -> None:
        """Refresh forever, every ``interval``; cancel the task to stop."""
        while True:
            try:
                await self.refresh()
            except FirelineError as exc:  # Temporal or the worker not answering (yet)
                log.warning("could not refresh the report metrics: %s", exc.reason)
            except Exception:  # a bug: keep the last figures, say so loudly, try again later
                log.exception("could not refresh the report metrics")
            await asyncio.sleep(self.interval.total_seconds())

"""AlertGroupWorkflow: one group of alerts (route + group labels), durable.

Alertmanager's grouping semantics — ``group_wait`` before the first flush, then at most one
flush per ``group_interval`` — with what Alertmanager does not keep: the group survives
restarts, remembers its incident, and records every alert, suppressed ones included.

At each flush the group decides what its alerts mean:

1. it already has an incident → pass the changes on to it;
2. an open incident of the same service (or of a service it depends on: a likely cascade)
   exists → attach to that one instead of declaring another;
3. the route's declare rule holds (severity, occurrences within a window, firing for long
   enough) → declare an incident titled from the alerts;
4. otherwise the alerts are only recorded in the group.

When every alert has resolved the group tells the incident, with the route's auto-resolve
policy; the incident decides (it knows its severity and its other groups). The group then
lingers so a flapping alert rejoins the same incident, and completes when the linger time
passes quietly.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.alerts import Alert, AlertStatus
    from workflows.contracts import (
        AlertChange,
        AlertGroupInput,
        AlertGroupState,
        AlertsArrived,
        AlertsChanged,
        AttachAlerts,
        CorrelateRequest,
        Correlation,
        DeclaredIncident,
        DeclareFromAlerts,
    )
    from workflows.history import history_is_long
    from workflows.severity import ImpactFacts, ImpactLevel

T = TypeVar("T")

ACTIVITY_TIMEOUT = timedelta(seconds=30)
# A firing copy arriving this soon after its alert's resolution is a late re-delivery.
IGNORE_STALE_FIRING = "alert-group-ignore-stale-firing"
STALE_FIRING_WINDOW = timedelta(minutes=5)
# The declaration runs as a regular activity again (see _call).
DECLARE_AS_ACTIVITY = "alert-group-declare-as-activity"
# Talking to our own Temporal: retry forever with backoff; a group must not give up.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))

# Alert severity label → customer impact the severity policy understands. An explicit
# `impact` label wins. Documented in the README.
SEVERITY_IMPACT = {
    "critical": ImpactLevel.PARTIAL_OUTAGE,
    "error": ImpactLevel.DEGRADED,
    "warning": ImpactLevel.DEGRADED,
    "info": ImpactLevel.NONE,
}


def _state_key(alert: Alert) -> str:
    """What makes a delivery new: re-delivery of the same state changes nothing."""
    ends = alert.ends_at.isoformat() if alert.ends_at else "-"
    return f"{alert.status.value}|{alert.starts_at.isoformat()}|{ends}"


@workflow.defn
class AlertGroupWorkflow:
    """A durable alert group."""

    @workflow.init
    def __init__(self, inp: AlertGroupInput) -> None:
        self._in = inp
        self._route = inp.route
        self._s = inp.carried or AlertGroupState()
        self._dirty = False
        self._recheck_at: datetime | None = None
        # Decided when the run starts (see run); the start signal's batch comes first and
        # cannot hold a late copy of something it has not seen resolve.
        self._ignore_stale_firing = False

    @workflow.run
    async def run(self, inp: AlertGroupInput) -> AlertGroupState:
        """Flush on Alertmanager's timers until the group has been quiet long enough."""
        # In the run, not in the signal handler: a patch checked in a handler can be met in
        # a different order on replay when a signal and other work share a workflow task.
        self._ignore_stale_firing = workflow.patched(IGNORE_STALE_FIRING)
        if self._s.created_at is None:
            self._s.created_at = workflow.now()
            # A zero group_wait used to be a 0 s timer, which the server fires about a second
            # later (its timer queue's granularity): a whole second before anyone is paged.
            if self._route.group_wait > timedelta(0) or not workflow.patched(
                "skip-zero-group-wait"
            ):
                await workflow.sleep(self._route.group_wait)
        while True:
            if self._dirty or self._recheck_due():
                self._dirty = False
                await self._flush()
                self._s.last_flush_at = workflow.now()
            if self._history_is_long():
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(self._in.model_copy(update={"carried": self._s}))
            timeout = self._wait_timeout()
            try:
                await workflow.wait_condition(
                    lambda: self._dirty or self._history_is_long(), timeout=timeout
                )
            except TimeoutError:
                if self._recheck_due():
                    continue
                if self._all_resolved():
                    break  # quiet for the whole linger time: the group is over
                continue
            await self._respect_group_interval()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._s

    # --- messages ------------------------------------------------------------------------

    @workflow.signal
    def alerts(self, batch: AlertsArrived) -> None:
        """Merge a batch; identical re-deliveries are counted and otherwise ignored."""
        if batch.acknowledged_by:
            self._s.ack_pending = batch.acknowledged_by
            self._dirty = True
        for grouped in batch.alerts:
            alert = grouped.alert
            known = self._s.alerts.get(alert.fingerprint)
            if known is not None and _state_key(known) == _state_key(alert):
                self._s.duplicates += 1
                continue
            if known is not None and alert.starts_at < known.starts_at:
                # An older state delivered late (senders retry out of order): keep the newer.
                self._s.duplicates += 1
                continue
            if self._late_firing_copy(known, alert, batch.received_at):
                self._s.duplicates += 1
                continue
            self._s.alerts[alert.fingerprint] = alert
            if alert.status is AlertStatus.RESOLVED:
                self._s.resolved_received[alert.fingerprint] = batch.received_at
            if grouped.suppressed:
                self._s.suppressed[alert.fingerprint] = grouped.suppressed
            else:
                self._s.suppressed.pop(alert.fingerprint, None)
            if alert.status is AlertStatus.FIRING:
                self._s.firing_seen.setdefault(alert.fingerprint, alert.starts_at)
                self._s.all_resolved_reported = False
            self._dirty = True

    def _late_firing_copy(self, known: Alert | None, alert: Alert, received_at: datetime) -> bool:
        """A firing copy of an alert that has since resolved, delivered out of order.

        Same startsAt: Prometheus gives an alert that fires again a new one. A retried or
        reordered webhook can still bring the old firing state after the resolution (make
        chaos did, and reopened a closed incident and paged again). Past the window it is
        taken as firing: Alertmanager's own resolve_timeout can resolve an alert Prometheus
        then re-sends unchanged, and that must not be lost.
        """
        if not self._ignore_stale_firing or known is None:
            return False
        if known.status is not AlertStatus.RESOLVED or alert.status is not AlertStatus.FIRING:
            return False
        resolved_at = self._s.resolved_received.get(alert.fingerprint)
        return (
            alert.starts_at == known.starts_at
            and resolved_at is not None
            and received_at - resolved_at < STALE_FIRING_WINDOW
        )

    @workflow.query
    def state(self) -> AlertGroupState:
        """The group's alerts, incident and counters."""
        return self._s

    # --- flushing ------------------------------------------------------------------------

    async def _flush(self) -> None:
        self._recheck_at = None
        # Twice at most: if the incident closed meanwhile, start over with a fresh one.
        for _ in range(2):
            if self._s.incident_id is None and self._active_firing():
                await self._find_or_declare_incident()
            if self._s.incident_id is None or await self._attach():
                return
            self._s.incident_id = None
            self._s.cascade_of = None
            self._s.reported = {}
            self._s.all_resolved_reported = False

    async def _attach(self) -> bool:
        """Pass unreported changes to the incident; False if it no longer takes alerts."""
        assert self._s.incident_id is not None
        changes = self._unreported_changes()
        all_resolved = self._all_resolved() and not self._s.all_resolved_reported
        ack = self._s.ack_pending
        if not changes and not all_resolved and not ack:
            return True
        note = None
        if self._s.cascade_of:
            note = f"likely cascade: {self._route.service} depends on {self._s.cascade_of}"
        attached: bool = await self._call(
            "incidents.attach_alerts",
            AttachAlerts(
                incident_id=self._s.incident_id,
                changes=AlertsChanged(
                    group_key=self._in.group_key,
                    changes=changes,
                    all_resolved=all_resolved,
                    cascade_note=note,
                    auto_resolve=self._route.auto_resolve,
                    acknowledged_by=ack,
                ),
            ),
            bool,
        )
        if not attached:
            return False
        for change in changes:
            self._s.reported[change.fingerprint] = _state_key(self._s.alerts[change.fingerprint])
        self._s.all_resolved_reported = self._s.all_resolved_reported or all_resolved
        if ack == self._s.ack_pending:
            self._s.ack_pending = None
        return True

    async def _find_or_declare_incident(self) -> None:
        if self._in.correlate_with:
            found: Correlation = await self._call(
                "incidents.correlate",
                CorrelateRequest(
                    services=self._in.correlate_with, window=self._in.correlation_window
                ),
                Correlation,
            )
            if found.incident_id:
                self._s.incident_id = found.incident_id
                if found.service and found.service != self._route.service:
                    self._s.cascade_of = found.service
                return
        if not self._declare_rule_holds():
            return
        firing = self._active_firing()
        first = min(firing, key=lambda a: (a.starts_at, a.fingerprint))
        declared: DeclaredIncident = await self._call(
            "incidents.declare_from_alerts",
            DeclareFromAlerts(
                # Stable across activity retries and replays; a new one per declaration.
                request_id=(
                    f"{workflow.info().workflow_id}/{self._s.created_at}/{self._s.declarations}"
                ),
                title=_title(firing),
                service=self._route.service or first.labels.get("service", "unknown"),
                impact=_impact(firing),
                summary=first.summary(),
                labels=dict(first.labels),
                escalation_policy=self._route.escalation_policy,
            ),
            DeclaredIncident,
            waits_for_workflows=True,
        )
        self._s.incident_id = declared.incident_id
        self._s.declarations += 1

    async def _call(
        self, name: str, arg: Any, result_type: type[T], *, waits_for_workflows: bool = False
    ) -> T:
        """Run one of the incident activities on the alert → page path.

        As local activities they run inside the group's workflow task: no hand-off through
        the server's task dispatch, which costs 25-50 ms per hop on the embedded server
        (bench/page_latency.py). They are short (a visibility query, a signal) and
        idempotent by request id, which is what local activities are for.

        Not the declaration (``waits_for_workflows``): it waits for the incident counter's
        Update and the incident's start, each a workflow task on this same worker, while the
        group's own task holds a slot. In a storm every slot was held by a group waiting for
        the counter, whose task then found none: declarations timed out and retried until
        the storm stalled (bench/alert_storm.py, fourth session).
        """
        remote_first = waits_for_workflows and workflow.patched(DECLARE_AS_ACTIVITY)
        if not remote_first and workflow.patched("alert-group-local-activities"):
            local: T = await workflow.execute_local_activity(
                name,
                arg,
                result_type=result_type,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=RETRY,
            )
            return local
        remote: T = await workflow.execute_activity(
            name,
            arg,
            result_type=result_type,
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=RETRY,
        )
        return remote

    def _declare_rule_holds(self) -> bool:
        rule = self._route.declare
        if not rule.enabled:
            return False
        now = workflow.now()
        candidates = [a for a in self._active_firing() if rule.admits_severity(_severity(a))]
        if not candidates:
            return False
        if rule.within is not None:
            window_start = now - rule.within
            recent = [a for a in candidates if self._s.firing_seen[a.fingerprint] >= window_start]
            if len(recent) < rule.min_occurrences:
                return False
        elif len(candidates) < rule.min_occurrences:
            return False
        earliest = min(a.starts_at for a in candidates)
        eligible_at = earliest + rule.firing_for
        if eligible_at > now:
            self._recheck_at = eligible_at
            return False
        return True

    # --- helpers -------------------------------------------------------------------------

    def _unreported_changes(self) -> list[AlertChange]:
        changes = []
        for fp, alert in sorted(self._s.alerts.items()):
            if self._s.reported.get(fp) == _state_key(alert):
                continue
            changes.append(
                AlertChange(
                    fingerprint=fp,
                    alertname=alert.alertname,
                    status=alert.status,
                    summary=alert.summary(),
                    labels=dict(alert.labels),
                    starts_at=alert.starts_at,
                    ends_at=alert.ends_at,
                    suppressed=self._s.suppressed.get(fp),
                    generator_url=alert.generator_url,
                )
            )
        return changes

    def _active_firing(self) -> list[Alert]:
        return [
            a
            for fp, a in self._s.alerts.items()
            if a.status is AlertStatus.FIRING and fp not in self._s.suppressed
        ]

    def _all_resolved(self) -> bool:
        return bool(self._s.alerts) and all(
            a.status is AlertStatus.RESOLVED for a in self._s.alerts.values()
        )

    def _recheck_due(self) -> bool:
        return self._recheck_at is not None and workflow.now() >= self._recheck_at

    def _wait_timeout(self) -> timedelta | None:
        now = workflow.now()
        waits = []
        if self._recheck_at is not None:
            waits.append(max(self._recheck_at - now, timedelta(seconds=1)))
        if self._all_resolved():
            waits.append(self._in.linger)
        # An idle group with firing alerts waits for news; there is nothing to time out.
        return min(waits) if waits else None

    async def _respect_group_interval(self) -> None:
        if self._s.last_flush_at is None:
            return
        remaining = self._s.last_flush_at + self._route.group_interval - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining)

    def _history_is_long(self) -> bool:
        return history_is_long(self._in.max_history_events)


def _severity(alert: Alert) -> str | None:
    return alert.labels.get("severity")


def _title(firing: list[Alert]) -> str:
    """``HighErrorRate: checkout 5xx above 5%`` (+ how many more), as people will recognise it."""
    first = min(firing, key=lambda a: (a.starts_at, a.fingerprint))
    summary = first.summary()
    title = first.alertname if summary == first.alertname else f"{first.alertname}: {summary}"
    others = len({a.alertname for a in firing} - {first.alertname})
    if others:
        title += f" (+{others} more alert{'s' if others > 1 else ''})"
    return title[:300]


def _impact(firing: list[Alert]) -> ImpactFacts:
    levels = []
    for alert in firing:
        explicit = alert.labels.get("impact")
        if explicit in {level.value for level in ImpactLevel}:
            levels.append(ImpactLevel(explicit))
        else:
            levels.append(SEVERITY_IMPACT.get((_severity(alert) or "").lower(), ImpactLevel.NONE))
    return ImpactFacts(impact=max(levels, key=lambda level: level.rank))

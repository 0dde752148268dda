"""From normalised alerts to durable alert groups.

Each alert is routed (``workflows.routing``), each matching route puts it in a group
(``group_key``), and each group gets ONE signal-with-start carrying all of this batch's
alerts for it — a batch of N alerts costs one round trip per group, not N. The group
workflow deduplicates, so a re-delivered batch changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from worker.config import FirelineConfig
from worker.errors import Unavailable
from worker.silence_service import SilenceService
from workflows.alert_group import AlertGroupWorkflow
from workflows.alerts import Alert, AlertStatus, dedup_batch
from workflows.contracts import AlertGroupInput, AlertsArrived, GroupedAlert
from workflows.routing import ResolvedRoute, group_key, match_routes
from workflows.suppression import Silence, is_inhibit_source, suppression
from workflows.time_intervals import contains

log = logging.getLogger("fireline.alerts")
# Alertmanager gives a webhook 10s by default; the silence lookup must leave room for the rest.
SILENCE_LOOKUP_TIMEOUT = timedelta(seconds=2)


def group_workflow_id(key: str) -> str:
    """``alert-group-<hash>``: group keys hold arbitrary label text, ids should not."""
    return "alert-group-" + hashlib.sha256(key.encode()).hexdigest()[:24]


class IntakeSummary(BaseModel):
    """What happened to an accepted batch."""

    accepted: int
    groups: int
    suppressed: int


@dataclass
class _Group:
    route: ResolvedRoute
    alerts: list[GroupedAlert] = field(default_factory=list)


class AlertIntake:
    """Routes alerts into their groups."""

    def __init__(
        self,
        client: Client,
        config: FirelineConfig,
        task_queue: str,
        silences: SilenceService | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.task_queue = task_queue
        self.silences = silences or SilenceService(client, task_queue)
        self._intervals = {i.name: i for i in config.time_intervals}
        # Firing alerts that can inhibit others. Per process: after a restart, inhibition
        # resumes as sources fire again (suppressed or not, every alert is recorded).
        self._sources: dict[str, Alert] = {}

    def plan(
        self, alerts: Iterable[Alert], now: datetime, silences: Sequence[Silence] = ()
    ) -> dict[str, _Group]:
        """Route, suppress and group a batch without sending anything."""
        batch = dedup_batch(alerts)
        self._track_sources(batch)
        groups: dict[str, _Group] = {}
        for alert in batch:
            reason = suppression(
                alert,
                now=now,
                silences=silences,
                firing=self._sources.values(),
                inhibit_rules=self.config.inhibit_rules,
                windows=self.config.maintenance_windows,
                intervals=self._intervals,
            )
            for route in match_routes(self.config.routing, alert.labels):
                key = group_key(route, alert.labels)
                group = groups.setdefault(key, _Group(route))
                muted = reason.text if reason else self._muted(route, now)
                group.alerts.append(GroupedAlert(alert=alert, suppressed=muted))
        return groups

    def _track_sources(self, batch: Iterable[Alert]) -> None:
        rules = self.config.inhibit_rules
        if not rules:
            return
        for alert in batch:
            if alert.status is AlertStatus.FIRING and is_inhibit_source(alert, rules):
                self._sources[alert.fingerprint] = alert
            else:
                self._sources.pop(alert.fingerprint, None)

    def _muted(self, route: ResolvedRoute, now: datetime) -> str | None:
        # Alertmanager's mute/active time intervals: the alert is kept, marked, not acted on.
        for name in route.mute_time_intervals:
            if contains(self._intervals[name], now):
                return f"muted: route '{route.name}' is in mute time interval '{name}'"
        if route.active_time_intervals and not any(
            contains(self._intervals[name], now) for name in route.active_time_intervals
        ):
            names = ", ".join(route.active_time_intervals)
            return f"muted: route '{route.name}' is active only during {names}"
        return None

    async def ingest(self, alerts: list[Alert], received_at: datetime) -> IntakeSummary:
        """Deliver a batch to its groups, starting the groups that do not exist yet."""
        silences = await self._active_silences() if alerts else []
        return await self._send(self.plan(alerts, received_at, silences), received_at)

    async def _active_silences(self) -> list[Silence]:
        # Better to page than to drop: if the silence store cannot answer (no worker, a
        # Temporal hiccup), alerts go through unsilenced and the log says why.
        try:
            return await self.silences.list(timeout=SILENCE_LOOKUP_TIMEOUT)
        except (Unavailable, RPCError) as exc:
            log.warning("silences unavailable, alerts are not silenced: %s", exc)
            return []

    async def ingest_keyed(self, alerts: list[Alert], received_at: datetime, key: str) -> None:
        """Deliver alerts to ONE group named by ``key`` (PagerDuty's dedup_key model).

        The route still decides service, timings and the declare rule; only the grouping
        is the sender's.
        """
        silences = await self._active_silences() if alerts else []
        planned = self.plan(alerts, received_at, silences)
        if not planned:
            return
        first = next(iter(planned.values()))
        merged = _Group(first.route, [a for g in planned.values() for a in g.alerts])
        await self._send({key: merged}, received_at)

    async def acknowledge_keyed(self, key: str, by: str, received_at: datetime) -> bool:
        """Pass an acknowledgement to the group named by ``key``; False if there is none."""
        handle = self.client.get_workflow_handle(group_workflow_id(key))
        try:
            await handle.signal(
                AlertGroupWorkflow.alerts,
                AlertsArrived(alerts=[], received_at=received_at, acknowledged_by=by),
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return False
            raise Unavailable(f"Temporal did not take the acknowledgement: {exc.message}") from None
        return True

    async def _send(self, groups: dict[str, _Group], received_at: datetime) -> IntakeSummary:
        try:
            await asyncio.gather(
                *(self._deliver(key, group, received_at) for key, group in groups.items())
            )
        except RPCError as exc:
            raise Unavailable(f"Temporal did not take the alerts: {exc.message}") from None
        return IntakeSummary(
            accepted=sum(len(g.alerts) for g in groups.values()),
            groups=len(groups),
            suppressed=sum(1 for g in groups.values() for a in g.alerts if a.suppressed),
        )

    async def _deliver(self, key: str, group: _Group, received_at: datetime) -> None:
        inp = AlertGroupInput(
            group_key=key,
            route=group.route,
            correlate_with=self.config.dependency_closure(group.route.service),
            correlation_window=self.config.alerting.correlation_window,
            linger=self.config.alerting.group_linger,
        )
        await self.client.start_workflow(
            AlertGroupWorkflow.run,
            inp,
            id=group_workflow_id(key),
            task_queue=self.task_queue,
            start_signal="alerts",
            start_signal_args=[AlertsArrived(alerts=group.alerts, received_at=received_at)],
        )

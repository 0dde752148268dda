"""From normalised alerts to durable alert groups.

Each alert is routed (``workflows.routing``), each matching route puts it in a group
(``group_key``), and each group gets ONE signal-with-start carrying all of this batch's
alerts for it — a batch of N alerts costs one round trip per group, not N. The group
workflow deduplicates, so a re-delivered batch changes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel
from temporalio.client import Client
from temporalio.service import RPCError

from worker.config import FirelineConfig
from worker.errors import Unavailable
from workflows.alert_group import AlertGroupWorkflow
from workflows.alerts import Alert, dedup_batch
from workflows.contracts import AlertGroupInput, AlertsArrived, GroupedAlert
from workflows.routing import ResolvedRoute, group_key, match_routes
from workflows.time_intervals import contains


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

    def __init__(self, client: Client, config: FirelineConfig, task_queue: str) -> None:
        self.client = client
        self.config = config
        self.task_queue = task_queue
        self._intervals = {i.name: i for i in config.time_intervals}

    def plan(self, alerts: Iterable[Alert], now: datetime) -> dict[str, _Group]:
        """Route and group a batch without sending anything (also used by route tests)."""
        groups: dict[str, _Group] = {}
        for alert in dedup_batch(alerts):
            for route in match_routes(self.config.routing, alert.labels):
                key = group_key(route, alert.labels)
                group = groups.setdefault(key, _Group(route))
                group.alerts.append(GroupedAlert(alert=alert, suppressed=self._muted(route, now)))
        return groups

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
        return await self._send(self.plan(alerts, received_at), received_at)

    async def ingest_keyed(self, alerts: list[Alert], received_at: datetime, key: str) -> None:
        """Deliver alerts to ONE group named by ``key`` (PagerDuty's dedup_key model).

        The route still decides service, timings and the declare rule; only the grouping
        is the sender's.
        """
        planned = self.plan(alerts, received_at)
        if not planned:
            return
        first = next(iter(planned.values()))
        merged = _Group(first.route, [a for g in planned.values() for a in g.alerts])
        await self._send({key: merged}, received_at)

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

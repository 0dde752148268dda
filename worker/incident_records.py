"""Incident records: the small, flat model that reports and the knowledge base work on.

``IncidentRecord`` holds only what the metrics, alert-quality and similarity code need,
built once from an ``IncidentState`` (``record_from_state``), so those modules are pure
functions of a list of records and can be tested without Temporal. ``RecordLoader`` builds
the list from a running fireline: visibility lists the incidents of a window, the ``state``
query reads each one. Closed incidents never change, so their records are cached.

Action items come from the postmortem's ActionItemWorkflow: the loader takes an optional
``action_items`` source (``action_items_from_workflows(service)`` reads those workflows);
without one, reports show no action items.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowExecutionStatus, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from worker.errors import FirelineError
from worker.incident_service import IncidentService, list_query
from workflows import search_attributes as sa
from workflows.contracts import (
    ActionItemState,
    IncidentState,
    IncidentStatus,
    PostmortemState,
    PostmortemStatus,
)

log = logging.getLogger("fireline.records")

# Actors that are fireline itself, not a person: their entries are not "someone acted".
SYSTEM_ACTORS = frozenset({"fireline", "ack-link"})

# Timeline kinds that move an incident into a status (``reopened`` goes back to acknowledged,
# as workflows.lifecycle says).
_STATUS_BY_KIND: dict[str, IncidentStatus] = {
    "declared": IncidentStatus.DECLARED,
    "acknowledged": IncidentStatus.ACKNOWLEDGED,
    "mitigated": IncidentStatus.MITIGATED,
    "resolved": IncidentStatus.RESOLVED,
    "reopened": IncidentStatus.ACKNOWLEDGED,
    "closed": IncidentStatus.CLOSED,
}


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PageRecord(_Record):
    """One page that went out: who was woken, and when."""

    recipient: str
    at: datetime
    level: int | None = None


class AlertRecord(_Record):
    """One alert (fingerprint) attached to an incident."""

    fingerprint: str
    alertname: str
    labels: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    # How many times it went into firing while attached (a flapping alert counts each time).
    firings: int = 1
    suppressed: bool = False


class Transition(_Record):
    """The incident entered ``status`` at ``at``."""

    status: IncidentStatus
    at: datetime


class IncidentRecord(_Record):
    """One incident, flattened for reports and similarity."""

    id: str
    title: str
    service: str
    severity: str
    status: IncidentStatus
    labels: dict[str, str] = Field(default_factory=dict)
    alerts: list[AlertRecord] = Field(default_factory=list)
    summary: str = ""
    notes: list[str] = Field(default_factory=list)
    resolution_summary: str | None = None
    # What the postmortem's sections say (search only); filled by RecordLoader.
    postmortem: str = ""
    declared_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    # Who resolved it the last time; None: fireline resolved it (all alerts resolved).
    resolved_by: str | None = None
    transitions: list[Transition] = Field(default_factory=list)
    pages: list[PageRecord] = Field(default_factory=list)
    # People (not fireline) who wrote anything on the timeline.
    actors: list[str] = Field(default_factory=list)
    # Runbooks with a succeeded, real (not dry) run, oldest first, each once.
    resolving_runbooks: list[str] = Field(default_factory=list)
    drill: bool = False

    @property
    def alert_names(self) -> list[str]:
        """Distinct alert names (attached alerts and the ``alertname`` label), sorted."""
        names = {a.alertname for a in self.alerts}
        if "alertname" in self.labels:
            names.add(self.labels["alertname"])
        return sorted(names)

    @property
    def text(self) -> str:
        """Everything a person wrote or read about it, for text search and similarity."""
        parts = [self.title, self.summary, *self.notes, self.resolution_summary or ""]
        parts += [self.postmortem]
        return "\n".join(p for p in parts if p)


class ActionItemRecord(_Record):
    """A postmortem action item, from its ActionItemWorkflow."""

    id: str
    incident_id: str
    # "open", "done" or "dropped"; dropped items leave the completion rate.
    status: str
    created_at: datetime
    done_at: datetime | None = None
    due: datetime | None = None


def record_from_state(state: IncidentState) -> IncidentRecord:
    """The record of one incident, from its ``state`` query."""
    firings: dict[str, int] = {}
    last_status: dict[str, str] = {}
    notes: list[str] = []
    pages: list[PageRecord] = []
    actors: list[str] = []
    transitions: list[Transition] = []
    resolved_by: str | None = None
    for entry in state.timeline:
        if entry.actor and entry.actor not in SYSTEM_ACTORS and entry.actor not in actors:
            actors.append(entry.actor)
        if entry.kind in _STATUS_BY_KIND:
            transitions.append(Transition(status=_STATUS_BY_KIND[entry.kind], at=entry.at))
        if entry.kind == "resolved":
            resolved_by = entry.actor
        elif entry.kind == "note":
            notes.append(entry.text)
        elif entry.kind == "page":
            user = entry.data.get("user")
            if isinstance(user, str) and user:
                level = entry.data.get("level")
                pages.append(
                    PageRecord(
                        recipient=user,
                        at=entry.at,
                        level=level if isinstance(level, int) else None,
                    )
                )
        elif entry.kind in ("alert_firing", "alert_resolved"):
            fp = entry.data.get("fingerprint")
            if isinstance(fp, str):
                status = "firing" if entry.kind == "alert_firing" else "resolved"
                # Only a move into firing is a new firing; a repeated firing change is not.
                if status == "firing" and last_status.get(fp) != "firing":
                    firings[fp] = firings.get(fp, 0) + 1
                last_status[fp] = status
    alerts = [
        AlertRecord(
            fingerprint=change.fingerprint,
            alertname=change.alertname,
            labels=change.labels,
            starts_at=change.starts_at,
            ends_at=change.ends_at,
            firings=max(firings.get(change.fingerprint, 0), 1),
            suppressed=change.suppressed is not None,
        )
        for change in state.alerts.values()
    ]
    runbooks: list[str] = []
    for run in state.runs:
        if run.status == "succeeded" and not run.dry_run and run.runbook not in runbooks:
            runbooks.append(run.runbook)
    return IncidentRecord(
        id=state.id,
        title=state.title,
        service=state.service,
        severity=state.severity.value,
        status=state.status,
        labels=state.labels,
        alerts=alerts,
        summary=state.summary,
        notes=notes,
        resolution_summary=state.resolution_summary,
        declared_at=state.declared_at,
        acknowledged_at=state.acknowledged_at,
        acknowledged_by=state.acknowledged_by,
        mitigated_at=state.mitigated_at,
        resolved_at=state.resolved_at,
        closed_at=state.closed_at,
        resolved_by=resolved_by if state.resolved_at is not None else None,
        transitions=transitions,
        pages=pages,
        actors=actors,
        resolving_runbooks=runbooks,
        drill=state.drill,
    )


def user_timezones(schedules: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Each person's time zone: that of the first schedule (by name) listing them.

    fireline's users have no time zone of their own; the schedule someone is on call in is
    the best statement of their working day. People on no schedule are left out (UTC).
    """
    zones: dict[str, str] = {}
    for name in sorted(schedules):
        schedule = schedules[name]
        zone = schedule.get("timezone")
        if not isinstance(zone, str):
            continue
        for layer in schedule.get("layers") or []:
            if isinstance(layer, Mapping):
                for user in layer.get("users") or []:
                    if isinstance(user, str):
                        zones.setdefault(user, zone)
    return zones


# --- loading from a running fireline ------------------------------------------------------

Progress = Callable[[int, int], None]
# Without a progress callback a load logs every this many incidents.
PROGRESS_EVERY = 100
ActionItemSource = Callable[[datetime | None, datetime | None], Awaitable[list[ActionItemRecord]]]


class LoadResult(BaseModel):
    """Records read, and the incidents that could not be read (with why)."""

    records: list[IncidentRecord] = Field(default_factory=list)
    skipped: dict[str, str] = Field(default_factory=dict)


def window_query(
    since: datetime | None,
    until: datetime | None,
    service: str | None = None,
    task_queue: str | None = None,
    statuses: list[IncidentStatus] | None = None,
) -> str:
    """Visibility query: incidents declared in [since, until) (of one service, one queue)."""
    clauses = [list_query(statuses=statuses, severity=None, service=service)]
    if task_queue is not None:
        # Another fireline (or a test) in the same namespace has its own incidents and
        # workers: only this queue's workers can answer the state queries.
        clauses.append(f"TaskQueue = {_quoted(task_queue)}")
    if since is not None:
        clauses.append(f"{sa.DECLARED_AT.name} >= '{_rfc3339(since)}'")
    if until is not None:
        clauses.append(f"{sa.DECLARED_AT.name} < '{_rfc3339(until)}'")
    return " AND ".join(clauses)


def _quoted(value: str) -> str:
    # As incident_service quotes visibility values: a name cannot end the string early.
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _rfc3339(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


# A postmortem's text joins its incident's record; a slow worker must not stall a report.
POSTMORTEM_QUERY_TIMEOUT = 5.0


class RecordLoader:
    """Builds records from Temporal: a visibility list, then one ``state`` query each.

    Queries run a few at a time (``concurrency``) so a long window does not flood the
    worker; ``progress(done, total)`` hears each one, for a CLI or log line. The records of
    ended incidents are cached for the loader's life (an ended workflow cannot change).
    ``action_items`` is the hook for ActionItemWorkflow data: any async callable taking the
    window and returning ``ActionItemRecord`` s.
    """

    def __init__(
        self,
        service: IncidentService,
        *,
        concurrency: int = 8,
        action_items: ActionItemSource | None = None,
    ) -> None:
        self.service = service
        self.action_items_source = action_items
        self._concurrency = concurrency
        self._ended: dict[str, IncidentRecord] = {}

    async def load(
        self,
        since: datetime | None,
        until: datetime | None,
        *,
        service: str | None = None,
        statuses: list[IncidentStatus] | None = None,
        limit: int = 5000,
        progress: Progress | None = None,
    ) -> LoadResult:
        """Records of the incidents declared in [since, until), oldest first.

        ``statuses`` narrows by the status search attribute before any state is read.
        """
        query = window_query(since, until, service, self.service.task_queue, statuses)
        found: list[tuple[str, bool]] = []
        try:
            async for execution in self.service.client.list_workflows(query, limit=limit):
                ended = execution.status not in (None, WorkflowExecutionStatus.RUNNING)
                found.append((execution.id.removeprefix("incident-"), ended))
        except RPCError as exc:
            raise self.service.translate(exc, None) from None
        result = LoadResult()
        gate = asyncio.Semaphore(self._concurrency)
        done = 0

        async def read(incident_id: str, ended: bool) -> None:
            nonlocal done
            async with gate:
                record = self._ended.get(incident_id)
                if record is None:
                    try:
                        state = await self.service.get(incident_id)
                    except FirelineError as exc:
                        # A terminated workflow or one no worker can replay: say which, go on.
                        result.skipped[incident_id] = exc.reason
                        log.warning("report skips %s: %s", incident_id, exc.reason)
                    else:
                        record, final = await self._with_postmortem(record_from_state(state), state)
                        # An ended incident cannot change, but its postmortem can until it
                        # is published.
                        if ended and final:
                            self._ended[incident_id] = record
                if record is not None:
                    result.records.append(record)
                done += 1
                if progress is not None:
                    progress(done, len(found))
                elif done % PROGRESS_EVERY == 0:
                    # Nobody is watching a callback: the log shows a long load moving.
                    log.info("read %d of %d incidents", done, len(found))

        await asyncio.gather(*(read(i, e) for i, e in found))
        result.records.sort(key=lambda r: (r.declared_at, r.id))
        return result

    async def record(self, incident_id: str) -> IncidentRecord:
        """One incident's record, read now (``FirelineError`` if it cannot be read)."""
        state = await self.service.get(incident_id)
        record, _ = await self._with_postmortem(record_from_state(state), state)
        return record

    async def _with_postmortem(
        self, record: IncidentRecord, state: IncidentState
    ) -> tuple[IncidentRecord, bool]:
        """The record with its postmortem's text, so search finds what people wrote there.

        Also says whether that text is final (published, or no postmortem at all).
        """
        # The id is fixed by convention; a postmortem started by hand has no id on the state.
        handle = self.service.client.get_workflow_handle(
            state.postmortem_id or f"postmortem-{state.id}"
        )
        try:
            postmortem: PostmortemState = await asyncio.wait_for(
                handle.query("state", result_type=PostmortemState), POSTMORTEM_QUERY_TIMEOUT
            )
        except RPCError as exc:
            if exc.status is RPCStatusCode.NOT_FOUND:
                return record, state.postmortem_id is None
            log.warning("postmortem of %s not read: %s", state.id, exc)
            return record, False
        except (WorkflowQueryFailedError, TimeoutError) as exc:
            # Search still works on the incident itself; the postmortem joins next time.
            log.warning("postmortem of %s not read: %s", state.id, exc)
            return record, False
        text = "\n".join(section.text for section in postmortem.sections if section.text)
        final = postmortem.status is PostmortemStatus.PUBLISHED
        return record.model_copy(update={"postmortem": text}), final

    async def action_items(
        self, since: datetime | None, until: datetime | None
    ) -> list[ActionItemRecord]:
        """Action items from the configured source; none without one."""
        if self.action_items_source is None:
            return []
        return await self.action_items_source(since, until)


def action_item_record(state: ActionItemState) -> ActionItemRecord:
    """The report's view of one ActionItemWorkflow ``state``."""
    return ActionItemRecord(
        id=state.id,
        incident_id=state.incident_id,
        status=state.status,
        created_at=state.created_at,
        done_at=state.closed_at if state.status == "done" else None,
        due=state.due_at,
    )


def action_items_from_workflows(service: IncidentService) -> ActionItemSource:
    """An ``action_items`` source reading every ActionItemWorkflow of ``service``'s queue.

    The window is applied by the report (items created in it); the list is not narrowed
    here because an item's creation time is not a search attribute.
    """

    async def source(since: datetime | None, until: datetime | None) -> list[ActionItemRecord]:
        query = f"WorkflowType = 'ActionItemWorkflow' AND TaskQueue = {_quoted(service.task_queue)}"
        items: list[ActionItemRecord] = []
        try:
            async for execution in service.client.list_workflows(query):
                if execution.status is WorkflowExecutionStatus.TERMINATED:
                    continue
                handle = service.client.get_workflow_handle(execution.id)
                try:
                    state = await handle.query("state", result_type=ActionItemState)
                except (WorkflowQueryFailedError, RPCError) as exc:
                    log.warning("report skips action item %s: %s", execution.id, exc)
                    continue
                record = action_item_record(state)
                if (since is None or record.created_at >= since) and (
                    until is None or record.created_at < until
                ):
                    items.append(record)
        except RPCError as exc:
            raise service.translate(exc, None) from None
        return items

    return source


def drop_drills(records: Iterable[IncidentRecord], include_drills: bool) -> list[IncidentRecord]:
    """Drills are practice: left out of metrics unless asked for."""
    return [r for r in records if include_drills or not r.drill]

"""Incident operations on top of Temporal, shared by the HTTP API and in-process tools.

Declaration allocates a number, then starts the incident workflow; every other action is an
Update, so the workflow's validators decide what is allowed. Temporal's exceptions are
translated here, once, into ``worker.errors`` with a reason a person can act on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
)
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from worker.config import FirelineConfig
from worker.drills import DRILL_TITLE, is_drill
from worker.errors import BadRequest, Conflict, FirelineError, Forbidden, NotFound, Unavailable
from worker.override_service import OverrideService
from worker.settings import Settings
from workflows import search_attributes as sa
from workflows.contracts import (
    AllocatedNumber,
    AllocateNumber,
    DeclareIncident,
    ImpactFacts,
    IncidentState,
    IncidentStatus,
    PostmortemSnapshot,
    RefusalRecorded,
    SequenceInput,
    Severity,
    StartRunbook,
    UpdateResult,
)
from workflows.incident import INVALID_REQUEST, INVALID_TRANSITION, UNKNOWN_USER, IncidentWorkflow
from workflows.runbook import NOT_ALLOWED
from workflows.sequence import IncidentSequenceWorkflow, sequence_workflow_id

log = logging.getLogger("fireline.incidents")

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)

# An Update waits for a worker to run it; past this the caller hears why nothing happens.
UPDATE_TIMEOUT = timedelta(seconds=15)

_ERROR_BY_TYPE: dict[str, type[FirelineError]] = {
    UNKNOWN_USER: Forbidden,
    NOT_ALLOWED: Forbidden,
    INVALID_TRANSITION: Conflict,
    INVALID_REQUEST: Conflict,
}
# Refusals worth an audit entry on the timeline: someone tried something they may not do.
_AUDITED_TYPES = {UNKNOWN_USER}


def workflow_id(incident_id: str) -> str:
    """The Temporal workflow id of an incident."""
    return f"incident-{incident_id}"


class IncidentSummary(BaseModel):
    """One row of an incident list, read from visibility."""

    id: str
    title: str
    status: IncidentStatus | None
    severity: Severity | None
    service: str | None
    commander: str | None
    team: str | None
    declared_at: datetime | None
    acknowledged_at: datetime | None
    resolved_at: datetime | None


class DeclareRequest(BaseModel):
    """What a person says when declaring an incident."""

    title: str = Field(min_length=1, max_length=300)
    service: str = Field(min_length=1, max_length=200)
    severity: Severity | None = None
    impact: ImpactFacts | None = None
    summary: str = Field(default="", max_length=20_000)
    labels: dict[str, str] = Field(default_factory=dict)
    commander: str | None = None
    # Who gets paged; default: the service's escalation policy.
    escalation_policy: str | None = None

    model_config = {"extra": "forbid"}


class IncidentService:
    """Declare, list, read and act on incidents."""

    def __init__(self, client: Client, config: FirelineConfig, task_queue: str) -> None:
        self.client = client
        self.config = config
        self.task_queue = task_queue
        # The counter is one workflow and Temporal limits in-flight Updates per workflow
        # (10 by default): a storm of declarations queues here instead of being refused.
        self._allocating = asyncio.Lock()
        self.overrides = OverrideService(client, task_queue)
        # Read from the environment like every fireline process: links in chat summaries.
        self.settings = Settings()

    # --- declare -----------------------------------------------------------------------------

    async def declare(self, req: DeclareRequest, actor: str | None) -> IncidentState:
        """Open a new incident for a person and return its first state."""
        handle = await self._open(req, actor, request_id=None, from_alerts=False)
        return await self._first_state(handle)

    async def declare_id(
        self, req: DeclareRequest, *, request_id: str, runbooks: Sequence[StartRunbook] = ()
    ) -> str:
        """Open an incident for an alert group; idempotent by ``request_id``.

        A retry (an activity running twice) gets the incident the first call opened. Only
        the id comes back: waiting for the first state would cost a round trip per
        declaration in an alert storm.
        """
        handle = await self._open(
            req, None, request_id=request_id, from_alerts=True, runbooks=runbooks
        )
        return handle.id.removeprefix("incident-")

    async def _open(
        self,
        req: DeclareRequest,
        actor: str | None,
        *,
        request_id: str | None,
        from_alerts: bool,
        runbooks: Sequence[StartRunbook] = (),
    ) -> WorkflowHandle[Any, Any]:
        self._check_declaration(req, actor, from_alerts=from_alerts)
        at_least = 0
        for attempt in range(5):
            update_id = f"{request_id}#{attempt}" if request_id else None
            number = await self._allocate_number(actor, update_id, at_least)
            incident_id = f"INC-{number}"
            snapshot = self.config.snapshot(
                req.service,
                incident_id,
                req.escalation_policy,
                links=self.settings.incident_links(incident_id),
            )
            snapshot = snapshot.model_copy(
                update={
                    "escalation": await self.overrides.merged(snapshot.escalation),
                    "suggest_similar": True,
                    "postmortem": self._with_export_dir(snapshot.postmortem),
                }
            )
            title = req.title
            if is_drill(req.labels) and not title.startswith(DRILL_TITLE):
                title = f"{DRILL_TITLE} {title}"
            inp = DeclareIncident(
                id=incident_id,
                title=title,
                service=req.service,
                severity=req.severity,
                impact=req.impact,
                summary=req.summary,
                labels=req.labels,
                declared_by=actor,
                commander=req.commander,
                config=snapshot,
                runbooks=list(runbooks),
                triage=self.config.triage_targets(req.service),
            )
            memo: dict[str, str] = {"title": title}
            if request_id:
                memo["request_id"] = request_id
            try:
                handle = await self._call(
                    self.client.start_workflow(
                        IncidentWorkflow.run,
                        inp,
                        id=workflow_id(incident_id),
                        task_queue=self.task_queue,
                        memo=memo,
                        # When this runs in a worker's process (an alert's declaration), the
                        # server hands the first task straight back: one dispatch hop less
                        # before the first page. Elsewhere it is a normal start.
                        request_eager_start=True,
                        search_attributes=TypedSearchAttributes(
                            [
                                SearchAttributePair(sa.STATUS, IncidentStatus.DECLARED.value),
                                SearchAttributePair(sa.SERVICE, req.service),
                            ]
                        ),
                    )
                )
            except WorkflowAlreadyStartedError:
                existing = self.client.get_workflow_handle(workflow_id(incident_id))
                if request_id and await _started_by(existing, request_id):
                    return existing
                # The counter is behind the incidents that exist (a new task queue, a reset
                # history): jump past them in one step rather than probe one by one.
                at_least = max(number + 1, await self._incident_count() + 1)
                log.warning("%s already exists; the counter moves to %d", incident_id, at_least)
                continue
            log.info("declared by %s", actor or "fireline", extra={"incident_id": incident_id})
            return handle
        raise Unavailable("could not allocate a free incident number after 5 attempts")

    def _with_export_dir(self, pm: PostmortemSnapshot | None) -> PostmortemSnapshot | None:
        """A relative postmortem export directory lives in the state directory."""
        if pm is None or pm.export_dir is None or Path(pm.export_dir).is_absolute():
            return pm
        exported = (self.settings.state_dir / pm.export_dir).resolve()
        return pm.model_copy(update={"export_dir": str(exported)})

    async def _incident_count(self) -> int:
        try:
            count = await self.client.count_workflows(
                "WorkflowType = 'IncidentWorkflow' AND ExecutionStatus != 'ContinuedAsNew'"
            )
        except RPCError:
            return 0
        return count.count

    def _check_declaration(
        self, req: DeclareRequest, actor: str | None, *, from_alerts: bool
    ) -> None:
        cfg = self.config
        if actor is not None and cfg.users and actor not in cfg.users:
            raise Forbidden(f"unknown user '{actor}': not in fireline's user directory")
        if req.commander is not None and cfg.users and req.commander not in cfg.users:
            raise BadRequest(f"commander: unknown user '{req.commander}'")
        # Alerts name whatever service their labels say; refusing them would lose them.
        if req.escalation_policy and req.escalation_policy not in cfg.escalation_policies:
            known = ", ".join(sorted(cfg.escalation_policies)) or "none configured"
            raise BadRequest(
                f"escalation_policy: unknown escalation policy '{req.escalation_policy}'; "
                f"known: {known}"
            )
        if cfg.services and req.service not in cfg.services and not from_alerts:
            known = ", ".join(sorted(cfg.services))
            raise BadRequest(f"service: unknown service '{req.service}'; known services: {known}")

    async def _allocate_number(
        self, actor: str | None, update_id: str | None, at_least: int
    ) -> int:
        start = WithStartWorkflowOperation(
            IncidentSequenceWorkflow.run,
            SequenceInput(),
            id=sequence_workflow_id(self.task_queue),
            task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        delay = 0.05
        async with self._allocating:
            for attempt in range(8):
                try:
                    result: AllocatedNumber = await self.client.execute_update_with_start_workflow(
                        IncidentSequenceWorkflow.allocate,
                        AllocateNumber(requested_by=actor, at_least=at_least),
                        start_workflow_operation=start,
                        # Update ids deduplicate: a retried request gets the number it has.
                        id=update_id,
                        rpc_timeout=UPDATE_TIMEOUT,
                    )
                    return result.number
                except RPCError as exc:
                    # Other processes may still crowd the counter, and it aborts in-flight
                    # Updates when it continues as new: both pass, so wait and try again.
                    if not _contended(exc) or attempt == 7:
                        raise self.translate(exc, None) from None
                    await asyncio.sleep(delay * (1 + random.random()))
                    delay = min(delay * 2, 2.0)
                except WorkflowUpdateRPCTimeoutOrCancelledError:
                    raise Unavailable(self._no_worker()) from None
        raise Unavailable("the incident counter stayed busy; try again")

    async def _first_state(self, handle: WorkflowHandle[Any, Any]) -> IncidentState:
        # A query needs the first workflow task done; until then the server says so.
        for _ in range(100):
            try:
                return await handle.query(IncidentWorkflow.state)
            except (WorkflowQueryFailedError, RPCError) as exc:
                if not _not_ready_yet(exc):
                    raise self.translate(exc, handle.id) from None
                await asyncio.sleep(0.05)
        raise Unavailable(
            "the incident was declared but no worker has picked it up yet; is `fireline worker` "
            "running on task queue " + self.task_queue + "?"
        )

    # --- read --------------------------------------------------------------------------------

    async def get(self, incident_id: str) -> IncidentState:
        """The incident's current state and timeline."""
        handle = self.client.get_workflow_handle(workflow_id(incident_id))
        try:
            return await handle.query(IncidentWorkflow.state)
        except (WorkflowQueryFailedError, RPCError) as exc:
            raise self.translate(exc, incident_id) from None

    async def list(
        self,
        *,
        statuses: list[IncidentStatus] | None = None,
        severity: Severity | None = None,
        service: str | None = None,
        limit: int = 100,
    ) -> list[IncidentSummary]:
        """Incidents from visibility, newest first; by default the open ones."""
        query = list_query(statuses=statuses, severity=severity, service=service)
        rows: list[IncidentSummary] = []
        try:
            async for execution in self.client.list_workflows(query, limit=limit):
                rows.append(await _summary(execution))
        except RPCError as exc:
            raise self.translate(exc, None) from None
        rows.sort(key=lambda r: r.declared_at.timestamp() if r.declared_at else 0.0, reverse=True)
        return rows

    # --- act ---------------------------------------------------------------------------------

    async def act(
        self, incident_id: str, update: str, arg: BaseModel, *, actor: str
    ) -> UpdateResult:
        """Run the incident Update named ``update``; refusals become ``FirelineError``."""
        handle = self.client.get_workflow_handle(workflow_id(incident_id))

        async def audit(refusal_type: str, error: FirelineError) -> None:
            if refusal_type in _AUDITED_TYPES:
                await self._record_refusal(handle, actor, update, error.reason)

        result = await self.execute_update(
            handle, update, arg, UpdateResult, subject=incident_id, on_refusal=audit
        )
        if result.timeline_omitted:
            # The workflow keeps its recorded result small; callers of the API still get the
            # whole incident, read by one query (it may include what happened since).
            full = await self.get(incident_id)
            result = result.model_copy(update={"state": full, "timeline_omitted": 0})
        return result

    async def execute_update(
        self,
        handle: WorkflowHandle[Any, Any],
        update: str,
        arg: BaseModel,
        result_type: type[R],
        *,
        subject: str,
        missing: str | None = None,
        update_id: str | None = None,
        on_refusal: Callable[[str, FirelineError], Awaitable[None]] | None = None,
    ) -> R:
        """Run an Update on any fireline workflow; failures become ``FirelineError``.

        ``on_refusal`` hears a validator's error type and the translated error before it is
        raised, to put the refusal on a timeline. ``update_id`` makes a repeat idempotent.
        """
        try:
            result: R = await handle.execute_update(
                update, arg, id=update_id, result_type=result_type, rpc_timeout=UPDATE_TIMEOUT
            )
            return result
        except WorkflowUpdateFailedError as exc:
            error = self.translate(exc, subject, missing=missing)
            cause = exc.cause
            if on_refusal is not None and isinstance(cause, ApplicationError):
                await on_refusal(cause.type or "", error)
            raise error from None
        except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as exc:
            raise self.translate(exc, subject, missing=missing) from None

    async def record_refusal(self, incident_id: str, actor: str, action: str, reason: str) -> None:
        """Put a refusal decided outside the workflow (e.g. by the API) on the timeline."""
        handle = self.client.get_workflow_handle(workflow_id(incident_id))
        await self._record_refusal(handle, actor, action, reason)

    async def _record_refusal(
        self, handle: WorkflowHandle[Any, Any], actor: str, action: str, reason: str
    ) -> None:
        try:
            await handle.signal(
                IncidentWorkflow.record_refusal,
                RefusalRecorded(actor=actor, action=action, reason=reason),
            )
        except RPCError as exc:
            # The refusal itself has already been returned to the caller; losing the audit
            # entry is logged rather than turned into a second error.
            log.warning("could not record refusal on %s: %s", handle.id, exc)

    # --- plumbing ----------------------------------------------------------------------------

    async def _call(self, coro: Awaitable[T]) -> T:
        try:
            return await coro
        except RPCError as exc:
            raise self.translate(exc, None) from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise Unavailable(self._no_worker()) from None

    def _no_worker(self) -> str:
        return (
            f"no fireline worker answered within {UPDATE_TIMEOUT.seconds}s; is `fireline worker` "
            f"(or `fireline up`) running on task queue '{self.task_queue}'?"
        )

    def translate(
        self, exc: BaseException, subject: str | None, *, missing: str | None = None
    ) -> FirelineError:
        """A Temporal failure as the ``FirelineError`` a person can act on.

        ``subject`` names what the workflow is (``INC-7``, ``run INC-7-r1``); ``missing`` is
        the reason when it does not exist (default ``no incident <subject>``).
        """
        if isinstance(exc, WorkflowUpdateFailedError):
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                return _ERROR_BY_TYPE.get(cause.type or "", Conflict)(cause.message)
            return Conflict(str(cause or exc))
        if isinstance(exc, WorkflowUpdateRPCTimeoutOrCancelledError):
            return Unavailable(self._no_worker())
        if isinstance(exc, WorkflowQueryFailedError):
            return Conflict(f"{subject}: {exc.message}")
        if isinstance(exc, RPCError):
            if exc.status == RPCStatusCode.NOT_FOUND:
                if subject and _closed_under_us(exc.message):
                    return Conflict(f"{subject} is closed")
                if missing:
                    return NotFound(missing)
                if subject:
                    return NotFound(f"no incident {subject}")
                return NotFound(exc.message)
            if exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED):
                return Unavailable(f"Temporal is not answering: {exc.message}")
            return Unavailable(f"Temporal refused the call ({exc.status.name}): {exc.message}")
        return Unavailable(str(exc))


async def _started_by(handle: WorkflowHandle[Any, Any], request_id: str) -> bool:
    memo = await (await handle.describe()).memo()
    return memo.get("request_id") == request_id


def _closed_under_us(message: str) -> bool:
    """The workflow closed before (or while) the call reached it.

    An Update admitted just before the workflow completes is dropped by the server with
    "update <id> not found": for the caller that is the same as calling a closed workflow.
    """
    return "already completed" in message or (
        message.startswith("update ") and message.endswith(" not found")
    )


def _contended(exc: RPCError) -> bool:
    return exc.status == RPCStatusCode.RESOURCE_EXHAUSTED or "aborted" in exc.message


def _not_ready_yet(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "not ready" in text or "workflow task" in text or "first workflow task" in text


def list_query(
    *,
    statuses: list[IncidentStatus] | None,
    severity: Severity | None,
    service: str | None,
) -> str:
    """A visibility query for incidents; values are quoted so labels cannot inject."""
    clauses = [
        "WorkflowType = 'IncidentWorkflow'",
        # A continued-as-new run is an old generation of an incident still listed once.
        "ExecutionStatus != 'ContinuedAsNew'",
    ]
    if statuses:
        either = " OR ".join(f"{sa.STATUS.name} = {_quote(s.value)}" for s in statuses)
        clauses.append(f"({either})")
    if severity:
        clauses.append(f"{sa.SEVERITY.name} = {_quote(severity.value)}")
    if service:
        clauses.append(f"{sa.SERVICE.name} = {_quote(service)}")
    return " AND ".join(clauses)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def _summary(execution: WorkflowExecution) -> IncidentSummary:
    attrs = execution.typed_search_attributes
    memo = await execution.memo()
    status = attrs.get(sa.STATUS)
    severity = attrs.get(sa.SEVERITY)
    if execution.status not in (None, WorkflowExecutionStatus.RUNNING) and (
        status is None or status != IncidentStatus.CLOSED.value
    ):
        # The workflow ended without closing (terminated, failed): say so, do not guess.
        status = None
    return IncidentSummary(
        id=execution.id.removeprefix("incident-"),
        title=str(memo.get("title", "")),
        status=IncidentStatus(status) if status else None,
        severity=Severity(severity) if severity else None,
        service=attrs.get(sa.SERVICE),
        commander=attrs.get(sa.COMMANDER),
        team=attrs.get(sa.TEAM),
        declared_at=attrs.get(sa.DECLARED_AT),
        acknowledged_at=attrs.get(sa.ACKNOWLEDGED_AT),
        resolved_at=attrs.get(sa.RESOLVED_AT),
    )

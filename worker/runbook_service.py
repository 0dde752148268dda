"""Runbook runs on top of Temporal: start one on an incident, read runs, approve, control.

A run is started by the incident's ``start_runbook`` Update, so the incident's validator
decides whether it may start; approvals and pause/resume/abort are Updates on the run's own
workflow (``runbook-<run_id>``), whose validators decide who may act. Failures are translated
by :meth:`IncidentService.translate`, the same way as every incident action, and a refusal
by a run's validator is put on the incident's timeline: who tried what, and why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from temporalio.client import Client, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from runbooks.schema import Runbook
from runbooks.substitution import AlertFacts, ParameterError
from worker.config import FirelineConfig
from worker.errors import BadRequest, FirelineError, NotFound
from worker.incident_service import IncidentService, workflow_id
from worker.runbook_library import params_from_alert
from workflows.contracts import (
    ApprovalDecision,
    RunbookRunState,
    RunControl,
    RunSummary,
    StartRunbook,
)
from workflows.incident import UNKNOWN_USER
from workflows.runbook import INVALID_REQUEST, NOT_ALLOWED

RunCommand = Literal["pause", "resume", "abort"]

# Refusals by a run's validators that belong on the incident's timeline.
_AUDITED_RUN_REFUSALS = frozenset({NOT_ALLOWED, INVALID_REQUEST})


class RunbookService:
    """Start runbooks on incidents, read their runs, decide approvals, pause/resume/abort."""

    def __init__(
        self,
        client: Client,
        config: FirelineConfig,
        task_queue: str,
        library: Mapping[str, Runbook],
        *,
        incidents: IncidentService | None = None,
    ) -> None:
        self.client = client
        self.config = config
        self.task_queue = task_queue
        self.library = dict(library)
        self.incidents = incidents or IncidentService(client, config, task_queue)

    # --- library -----------------------------------------------------------------------------

    def runbook(self, name: str) -> Runbook:
        """The library's runbook called ``name``; NotFound names the known ones."""
        found = self.library.get(name)
        if found is None:
            known = ", ".join(sorted(self.library)) or "none in the library"
            raise NotFound(f"no runbook '{name}'; known: {known}")
        return found

    # --- start -------------------------------------------------------------------------------

    async def start(
        self,
        incident_id: str,
        name: str,
        params: Mapping[str, object],
        actor: str,
        dry_run: bool = False,
        alert: AlertFacts | None = None,
    ) -> RunSummary:
        """Run the runbook ``name`` on the incident; parameters are checked before the start."""
        runbook = self.runbook(name)
        try:
            values = params_from_alert(runbook, alert.labels if alert else {}, params)
        except ParameterError as exc:
            raise BadRequest("params: " + "; ".join(exc.problems)) from None
        start = self.start_request(runbook, values, actor, dry_run=dry_run, alert=alert)
        handle = self.client.get_workflow_handle(workflow_id(incident_id))

        async def audit(refusal_type: str, error: FirelineError) -> None:
            if refusal_type == UNKNOWN_USER:
                await self.incidents.record_refusal(
                    incident_id, actor, f"run runbook {name}", error.reason
                )

        return await self.incidents.execute_update(
            handle, "start_runbook", start, RunSummary, subject=incident_id, on_refusal=audit
        )

    def start_request(
        self,
        runbook: Runbook,
        params: Mapping[str, Any],
        actor: str,
        *,
        dry_run: bool = False,
        alert: AlertFacts | None = None,
    ) -> StartRunbook:
        """What the incident needs to start ``runbook``: with this config's clusters and groups."""
        return StartRunbook(
            runbook=runbook,
            actor=actor,
            params=dict(params),
            alert=alert,
            dry_run=dry_run,
            cluster_queues={n: c.queue(n) for n, c in self.config.clusters.items()},
            groups={n: list(team.members) for n, team in self.config.teams.items()},
        )

    # --- read --------------------------------------------------------------------------------

    async def runs(self, incident_id: str) -> list[RunSummary]:
        """The incident's runs, oldest first."""
        return (await self.incidents.get(incident_id)).runs

    async def run(self, incident_id: str, run_id: str) -> RunSummary:
        """One run of the incident as the incident knows it; NotFound if it has no such run."""
        for summary in await self.runs(incident_id):
            if summary.run_id == run_id:
                return summary
        raise NotFound(_no_run(incident_id, run_id))

    async def state(self, incident_id: str, run_id: str) -> RunbookRunState:
        """The run's steps, pending approval and status (its ``state`` query)."""
        return await self._query(incident_id, await self.run(incident_id, run_id))

    # --- act ---------------------------------------------------------------------------------

    async def decide(
        self,
        incident_id: str,
        run_id: str,
        step_id: str,
        approve: bool,
        actor: str,
        comment: str = "",
    ) -> RunbookRunState:
        """Approve or reject the step the run waits on; a repeat by the same person is a no-op.

        The Update id is the decision itself, so a double click returns the first outcome.
        A step visited again (a ``goto``) is a new decision: its visit number joins the id.
        """
        verdict = "approve" if approve else "reject"
        summary = await self.run(incident_id, run_id)
        state = await self._query(incident_id, summary)
        visits = [r.visit for r in state.steps if r.step_id == step_id]
        update_id = f"decide-{run_id}-{step_id}-{actor}-{verdict}"
        if visits and max(visits) > 1:
            update_id += f"-v{max(visits)}"
        decision = ApprovalDecision(step_id=step_id, approve=approve, actor=actor, comment=comment)
        return await self._run_update(
            incident_id,
            summary,
            "decide",
            decision,
            actor=actor,
            action=f"{verdict} {step_id} in {run_id}",
            update_id=update_id,
        )

    async def control(
        self, incident_id: str, run_id: str, command: RunCommand, actor: str, reason: str = ""
    ) -> RunbookRunState:
        """Pause, resume or abort the run (the commander's call)."""
        return await self._run_update(
            incident_id,
            await self.run(incident_id, run_id),
            command,
            RunControl(actor=actor, reason=reason),
            actor=actor,
            action=f"{command} {run_id}",
        )

    # --- plumbing ----------------------------------------------------------------------------

    async def _run_update(
        self,
        incident_id: str,
        summary: RunSummary,
        update: str,
        arg: ApprovalDecision | RunControl,
        *,
        actor: str,
        action: str,
        update_id: str | None = None,
    ) -> RunbookRunState:
        run_id = summary.run_id

        async def audit(refusal_type: str, error: FirelineError) -> None:
            if refusal_type in _AUDITED_RUN_REFUSALS:
                await self.incidents.record_refusal(incident_id, actor, action, error.reason)

        return await self.incidents.execute_update(
            self._handle(summary),
            update,
            arg,
            RunbookRunState,
            subject=f"run {run_id}",
            missing=_no_run(incident_id, run_id),
            update_id=update_id,
            on_refusal=audit,
        )

    async def _query(self, incident_id: str, summary: RunSummary) -> RunbookRunState:
        try:
            state: RunbookRunState = await self._handle(summary).query(
                "state", result_type=RunbookRunState
            )
        except (WorkflowQueryFailedError, RPCError) as exc:
            raise self.incidents.translate(
                exc, f"run {summary.run_id}", missing=_no_run(incident_id, summary.run_id)
            ) from None
        return state

    def _handle(self, summary: RunSummary) -> WorkflowHandle[Any, Any]:
        # The incident recorded the run's workflow id (runbook-<run_id>) when it started it.
        return self.client.get_workflow_handle(summary.workflow_id)


def _no_run(incident_id: str, run_id: str) -> str:
    return f"{incident_id} has no run {run_id}"

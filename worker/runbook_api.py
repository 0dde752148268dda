"""HTTP routes for runbooks: the library, runs of an incident, approvals, pause/resume/abort.

The caller is the authenticated user (the API's ``caller`` dependency) and is the actor of
every action; the run's validators decide what that person may do, and a refusal comes back
as 403 (not allowed) or 409 (not in this state) with the validator's reason.
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path
from pydantic import BaseModel, ConfigDict, Field, JsonValue

from runbooks.schema import Parameter, Runbook
from worker.runbook_service import RunbookService, RunCommand
from workflows.contracts import RunbookRunState, RunSummary

IncidentId = Annotated[str, Path(pattern=r"^INC-[0-9]+$", description="e.g. INC-42")]
RunId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="e.g. INC-42-r1")]
StepId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="a step id")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartRunBody(_Body):
    """Which runbook, its parameters (text is parsed by type), and whether to only rehearse."""

    runbook: str = Field(min_length=1, max_length=200)
    params: dict[str, JsonValue] = Field(default_factory=dict)
    dry_run: bool = False


class DecisionBody(_Body):
    """An optional comment for the timeline."""

    comment: str = Field(default="", max_length=2000)


class ControlBody(_Body):
    """Why, for the timeline."""

    reason: str = Field(default="", max_length=2000)


class RunbookInfo(BaseModel):
    """One runbook of the library, as a caller choosing one needs it."""

    name: str
    description: str
    match: list[str]
    parameters: dict[str, Parameter]

    @classmethod
    def of(cls, runbook: Runbook) -> "RunbookInfo":
        """The listing entry of ``runbook``."""
        return cls(
            name=runbook.name,
            description=runbook.description,
            match=[str(m) for m in runbook.match],
            parameters=runbook.parameters,
        )


def runbook_router(runs: RunbookService, caller: Callable[..., str]) -> APIRouter:
    """The runbook routes, over the same RunbookService the dashboard uses."""
    router = APIRouter(tags=["runbooks"])
    Caller = Annotated[str, Depends(caller)]  # noqa: N806 - a type alias, named as one

    @router.get("/v1/runbooks")
    async def list_runbooks(_: Caller) -> list[RunbookInfo]:
        """The runbook library: name, description, matchers and parameters."""
        return [RunbookInfo.of(runs.library[name]) for name in sorted(runs.library)]

    @router.post("/v1/incidents/{incident_id}/runs", status_code=201)
    async def start_run(incident_id: IncidentId, body: StartRunBody, actor: Caller) -> RunSummary:
        """Run a runbook of the library on this incident."""
        return await runs.start(incident_id, body.runbook, body.params, actor, body.dry_run)

    @router.get("/v1/incidents/{incident_id}/runs")
    async def list_runs(incident_id: IncidentId, _: Caller) -> list[RunSummary]:
        """The incident's runs, oldest first."""
        return await runs.runs(incident_id)

    @router.get("/v1/incidents/{incident_id}/runs/{run_id}")
    async def get_run(incident_id: IncidentId, run_id: RunId, _: Caller) -> RunbookRunState:
        """One run: status, the approval it waits for, and every step so far."""
        return await runs.state(incident_id, run_id)

    def decision(approve: bool) -> Callable[..., Any]:
        async def decide(
            incident_id: IncidentId,
            run_id: RunId,
            step_id: StepId,
            actor: Caller,
            body: Annotated[DecisionBody | None, Body()] = None,
        ) -> RunbookRunState:
            comment = body.comment if body else ""
            return await runs.decide(incident_id, run_id, step_id, approve, actor, comment)

        decide.__doc__ = (
            "Approve the step the run waits on; repeating it is harmless."
            if approve
            else "Reject the step the run waits on; the runbook's on_reject applies."
        )
        return decide

    for verb, approve in (("approve", True), ("reject", False)):
        router.post(
            f"/v1/incidents/{{incident_id}}/runs/{{run_id}}/steps/{{step_id}}/{verb}",
            name=f"{verb}_step",
        )(decision(approve))

    def control(command: RunCommand, doc: str) -> None:
        async def endpoint(
            incident_id: IncidentId,
            run_id: RunId,
            actor: Caller,
            body: Annotated[ControlBody | None, Body()] = None,
        ) -> RunbookRunState:
            reason = body.reason if body else ""
            return await runs.control(incident_id, run_id, command, actor, reason)

        endpoint.__doc__ = doc
        router.post(
            f"/v1/incidents/{{incident_id}}/runs/{{run_id}}/{command}", name=f"{command}_run"
        )(endpoint)

    control("pause", "Stop the run before its next step (the commander).")
    control("resume", "Go on after a pause (the commander).")
    control("abort", "Stop the run now; the step in flight is cancelled (the commander).")
    return router

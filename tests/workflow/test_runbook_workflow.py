"""RunbookWorkflow on the time-skipping server: steps, approvals, checks, control, dry run."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from runbooks.schema import Runbook
from runbooks.substitution import AlertFacts
from tests.runbook_harness import (
    Script,
    declare_incident,
    incident_state,
    play,
    run_state,
    start_run,
    step_statuses,
    world_worker,
)
from tests.support import eventually
from workflows.contracts import (
    ApprovalDecision,
    IncidentStatus,
    RunbookRunState,
    RunControl,
    TriageTarget,
)
from workflows.runbook import RunbookWorkflow


def rollback_runbook(**overrides: Any) -> Runbook:
    """inspect → approve (commander or sre-leads) → rollback → validate, escalate on failure."""
    raw: dict[str, Any] = {
        "name": "rollback",
        "parameters": {"deployment": {"type": "string", "required": True}},
        "steps": [
            {
                "id": "inspect",
                "kind": "action",
                "action": "k8s.status",
                "cluster": "{alert.labels.cluster}",
                "with": {"deployment": "{params.deployment}"},
            },
            {
                "id": "approve",
                "kind": "approval",
                "approvers": {"roles": ["commander"], "groups": ["sre-leads"]},
                "prompt": "Roll {params.deployment} back from {steps.inspect.output.revision}?",
                "timeout": "15m",
            },
            {
                "id": "rollback",
                "kind": "action",
                "action": "k8s.rollback",
                "cluster": "{alert.labels.cluster}",
                "with": {
                    "deployment": "{params.deployment}",
                    "from_revision": "{steps.inspect.output.revision}",
                },
                "retries": {"max_attempts": 3, "backoff": "1s"},
            },
            {
                "id": "validate",
                "kind": "check",
                "query": 'error_ratio{deployment="{params.deployment}"}',
                "interval": "1m",
                "count": 3,
                "success_condition": "result[0] < 0.05",
                "failure_condition": "result[0] >= 0.2",
            },
        ],
        "on_failure": {
            "run": [{"id": "page-owners", "kind": "action", "action": "page", "with": {}}],
            "then": "escalate",
        },
    }
    raw.update(overrides)
    return Runbook.model_validate(raw)


ALERT = AlertFacts(labels={"alertname": "HighErrorRate", "cluster": "sandbox"})
PARAMS = {"deployment": "checkout"}


def happy_script(**overrides: Any) -> Script:
    script = Script(
        actions={
            "inspect": [{"output": {"revision": 2}}],
            "rollback": [{"output": {"revision": 3, "rolled_back_to": 1}}],
        },
        measurements={"validate": [[0.01], [0.02], [0.01]]},
        decisions={"approve": {"approve": True, "by": "alice", "comment": "go"}},
    )
    for key, value in overrides.items():
        setattr(script, key, value)
    return script


async def test_approved_rollback_validates_and_mitigates_the_incident(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    time_env, client = own_time_env, own_time_env.client
    script = happy_script()
    async with world_worker(client, task_queue, script) as world:
        incident = await declare_incident(client, task_queue)
        run = await start_run(
            client, incident, task_queue, rollback_runbook(), params=PARAMS, alert=ALERT
        )
        state = await play(time_env, run, script)
        assert state.status == "succeeded"
        assert step_statuses(state) == [
            ("inspect", "succeeded"),
            ("approve", "succeeded"),
            ("rollback", "succeeded"),
            ("validate", "succeeded"),
        ]
        rollback = next(r for r in world.requests if r.step_id == "rollback")
        # Substitution from an earlier step's output, and who approved, reach the action.
        assert rollback.inputs == {"deployment": "checkout", "from_revision": 2}
        assert rollback.actor == "alice"
        assert rollback.idempotency_key == f"{state.run_id}/rollback/1"
        assert world.queries == [("validate", 'error_ratio{deployment="checkout"}')] * 3
        approval = state.steps[1]
        assert (approval.actor, approval.comment) == ("alice", "go")

        async def mitigated() -> None:
            incident_now = await incident_state(incident)
            assert incident_now.status is IncidentStatus.MITIGATED
            texts = [e.text for e in incident_now.timeline]
            assert any("waits for approval by the commander" in t for t in texts), texts
            assert any("rollback succeeded" in t for t in texts), texts
            assert any("validated recovery" in t for t in texts), texts
            assert incident_now.runs[0].status == "succeeded"

        await eventually(mitigated)

        # Every k8s step can be told apart from a dead worker within 30 s, not its timeout.
        scheduled = {
            e.activity_task_scheduled_event_attributes.activity_type.name: (
                e.activity_task_scheduled_event_attributes.heartbeat_timeout.ToTimedelta()
            )
            async for e in run.fetch_history_events()
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        }
        assert scheduled["k8s.status"] == scheduled["k8s.rollback"] == timedelta(seconds=30)


async def test_a_failed_check_runs_on_failure_and_escalates(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    time_env, client = own_time_env, own_time_env.client
    script = happy_script(measurements={"validate": [[0.5]]})
    async with world_worker(client, task_queue, script) as world:
        incident = await declare_incident(client, task_queue)
        run = await start_run(
            client, incident, task_queue, rollback_runbook(), params=PARAMS, alert=ALERT
        )
        state = await play(time_env, run, script)
        assert state.status == "failed"
        assert step_statuses(state)[-2:] == [("validate", "failed"), ("page-owners", "succeeded")]
        assert "analysis failed" in state.error
        # page is built in: the incident's escalation pages, no activity is called.
        assert "page-owners" not in [r.step_id for r in world.requests]
        assert state.steps[-1].summary.startswith("paging the next escalation level")

        async def escalation_on_timeline() -> None:
            texts = [e.text for e in (await incident_state(incident)).timeline]
            assert any("escalating the incident" in t for t in texts), texts

        await eventually(escalation_on_timeline)


async def test_approval_refusals_wrong_user_twice_after_timeout_and_after_abort(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    time_env, client = own_time_env, own_time_env.client
    script = happy_script(decisions={})
    async with world_worker(client, task_queue, script):
        incident = await declare_incident(client, task_queue)
        run = await start_run(
            client, incident, task_queue, rollback_runbook(), params=PARAMS, alert=ALERT
        )
        await until_waiting(run)

        # carol holds no role and is in no group; dave is not a user at all.
        refusal = await _refused_on(run, "carol")
        assert refusal.startswith("NotAllowed: carol may not approve approve")
        assert (await _refused_on(run, "dave")).startswith("NotAllowed")
        assert (await _refused_on(run, "alice", step="rollback")).startswith(
            "InvalidRequest: rollback is not waiting for approval"
        )
        # bob may, as a member of sre-leads.
        await run.execute_update(
            RunbookWorkflow.decide, ApprovalDecision(step_id="approve", approve=True, actor="bob")
        )
        assert (await _refused_on(run, "alice")).startswith("InvalidRequest")
        state = await play(time_env, run, script)
        assert state.steps[1].actor == "bob"

        # A second run whose approval times out, then one that is aborted.
        timeout_script = happy_script(decisions={"approve": {"timeout": True}})
        second = await start_run(
            client, incident, task_queue, rollback_runbook(), params=PARAMS, alert=ALERT
        )
        state = await play(time_env, second, timeout_script)
        assert state.status == "failed"
        assert ("approve", "failed") in step_statuses(state)
        assert "no decision within the approval timeout" in state.steps[1].comment
        # The run has ended: the server itself refuses an Update on a closed workflow.
        with pytest.raises(RPCError):
            await second.execute_update(
                RunbookWorkflow.decide,
                ApprovalDecision(step_id="approve", approve=True, actor="alice"),
            )

        third = await start_run(
            client, incident, task_queue, rollback_runbook(), params=PARAMS, alert=ALERT
        )
        await until_waiting(third)
        with pytest.raises(WorkflowUpdateFailedError):  # only the commander may abort
            await third.execute_update(RunbookWorkflow.abort, RunControl(actor="bob"))
        await third.execute_update(RunbookWorkflow.abort, RunControl(actor="alice", reason="no"))
        final = RunbookRunState.model_validate(await third.result())
        assert final.status == "aborted"
        assert final.error == "aborted by alice: no"
        # An aborted run closes at once, so a late decision meets the server's refusal (not
        # the validator's: between the abort and the close there is no window to aim at).
        with pytest.raises(RPCError):
            await third.execute_update(
                RunbookWorkflow.decide,
                ApprovalDecision(step_id="approve", approve=True, actor="alice"),
            )


async def until_waiting(run: Any) -> None:
    """Until the run waits for an approval."""

    async def waiting() -> None:
        assert (await run_state(run)).pending is not None

    await eventually(waiting)


async def _refused_on(run: Any, actor: str, step: str = "approve") -> str:
    with pytest.raises(WorkflowUpdateFailedError) as caught:
        await run.execute_update(
            RunbookWorkflow.decide, ApprovalDecision(step_id=step, approve=True, actor=actor)
        )
    assert isinstance(caught.value.cause, ApplicationError)
    return f"{caught.value.cause.type}: {caught.value.cause.message}"


async def test_dry_run_tells_every_action_and_changes_nothing(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    time_env, client = own_time_env, own_time_env.client
    script = happy_script()
    async with world_worker(client, task_queue, script) as world:
        incident = await declare_incident(client, task_queue)
        run = await start_run(
            client,
            incident,
            task_queue,
            rollback_runbook(),
            params=PARAMS,
            alert=ALERT,
            dry_run=True,
        )
        state = await play(time_env, run, script)
        assert state.status == "succeeded"
        assert state.dry_run
        assert world.requests
        assert all(r.dry_run for r in world.requests)
        # A dry run's passing check does not mitigate the incident.
        assert (await incident_state(incident)).status is IncidentStatus.DECLARED


async def test_pause_holds_the_next_step_until_resumed(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    time_env, client = own_time_env, own_time_env.client
    script = happy_script()
    async with world_worker(client, task_queue, script) as world:
        incident = await declare_incident(client, task_queue)
        run = await start_run(
            client, incident, task_queue, rollback_runbook(), params=PARAMS, alert=ALERT
        )
        await until_waiting(run)
        await run.execute_update(RunbookWorkflow.pause, RunControl(actor="alice"))
        await run.execute_update(
            RunbookWorkflow.decide, ApprovalDecision(step_id="approve", approve=True, actor="alice")
        )
        await time_env.sleep(timedelta(minutes=5))
        assert [r.step_id for r in world.requests] == ["inspect"]  # rollback held back
        assert (await run_state(run)).status == "paused"
        await run.execute_update(RunbookWorkflow.resume, RunControl(actor="alice"))
        state = await play(time_env, run, script)
        assert state.status == "succeeded"


async def test_refused_start_names_the_parameter(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    client = own_time_env.client
    async with world_worker(client, task_queue, Script()):
        incident = await declare_incident(client, task_queue)
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await start_run(client, incident, task_queue, rollback_runbook(), params={})
        assert isinstance(caught.value.cause, ApplicationError)
        assert "parameter 'deployment' is required" in caught.value.cause.message
        assert (await incident_state(incident)).runs == []


async def test_triage_reads_recent_rollouts_and_proposes_the_rollback(
    own_time_env: WorkflowEnvironment, task_queue: str
) -> None:
    time_env, client = own_time_env, own_time_env.client
    now = await time_env.get_current_time()
    rolled_out = (now - timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%SZ")
    change = {
        "namespace": "shop",
        "deployment": "checkout",
        "revision": 2,
        "image": "shop/checkout:1.4.0",
        "time": rolled_out,
    }
    script = Script(actions={"recent-changes-checkout": [{"output": {"changes": [change]}}]})
    target = TriageTarget(service="checkout", cluster="sandbox", queue=task_queue, namespace="shop")
    async with world_worker(client, task_queue, script) as world:
        incident = await declare_incident(client, task_queue, triage=[target])

        async def triaged() -> list[str]:
            texts = [e.text for e in (await incident_state(incident)).timeline]
            assert any(
                t.startswith("triage: recent rollouts in sandbox/shop: checkout revision 2")
                for t in texts
            ), texts
            return texts

        texts = await eventually(triaged)
        [suggestion] = [t for t in texts if "consider the rollback runbook" in t]
        assert "shop/checkout rolled out 4 min before this incident" in suggestion
        assert "--param deployment=checkout" in suggestion
        [request] = world.requests
        assert request.inputs == {"namespaces": ["shop"], "since": "2h"}

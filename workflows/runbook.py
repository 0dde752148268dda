"""RunbookWorkflow: one run of one runbook for one incident, step by step, durably.

The incident starts it as a child (``IncidentWorkflow.start_runbook``) with a snapshot of
the runbook, so editing the file later never changes a run in flight. Each step is recorded
(inputs after substitution, output, attempts, who decided) in the run's state and, through
the ``runbook_event`` signal, on the incident's timeline.

- action: one activity by name, on the step's cluster's task queue when it names one, with
  the step's retry policy; every action is idempotent by ``ActionRequest.idempotency_key``
  (run, step, visit), so a worker crash mid-step retries without acting twice;
- approval: waits on a durable timer for ``decide`` (an Update whose validator refuses
  people who may not approve, steps that are not waiting, runs that ended);
- wait: a durable timer, or a condition over incident and alert facts the incident pushes;
- check: Argo-style analysis, one ``metrics.query`` activity per measurement, durable timers
  between them; a pass tells the incident it is mitigated.

The commander can pause (at the next step boundary), resume and abort (cancels the step in
flight). A dry run passes ``dry_run`` to every action, which then reports what it would do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

with workflow.unsafe.imports_passed_through():
    from activities.contracts import ActionRequest, ActionResult, MetricQuery, MetricSample
    from runbooks.schema import (
        ActionStep,
        ApprovalStep,
        CheckStep,
        FailureHandler,
        Goto,
        Retries,
        Step,
        WaitStep,
    )
    from runbooks.substitution import (
        AnalysisPhase,
        RunContext,
        StepResult,
        SubstitutionError,
        action_inputs,
        assess_analysis,
        assess_measurement,
        evaluate,
        should_run,
        substitute_text,
    )
    from workflows.contracts import (
        AlertStatusChanged,
        ApprovalDecision,
        IncidentFactsChanged,
        Measurement,
        PendingApproval,
        RunbookEvent,
        RunbookInput,
        RunbookRunState,
        RunControl,
        StepRecord,
    )
    from workflows.failures import activity_failure_reason

NOT_ALLOWED = "NotAllowed"
# The built-in action that pages the next level of the incident's escalation policy.
PAGE = "page"
INVALID_REQUEST = "InvalidRequest"
# Actions that heartbeat; only they get a heartbeat timeout. It lets an abort reach them
# (cancellation travels with heartbeats) and a SIGKILLed worker's step be retried within
# seconds rather than at the step's timeout. Every k8s action beats while an API call or
# a wait is slow (activities/kubernetes/actions.py).
HEARTBEATING_PREFIX = "k8s."
K8S_HEARTBEATS = "k8s-heartbeats"
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
QUERY_TIMEOUT = timedelta(minutes=1)
# A goto loop that never ends is a runbook bug; stop it rather than run forever.
MAX_VISITS = 20


def _refuse(message: str, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


class _StepFailed(Exception):
    """A step did not succeed; ``policy`` says what the run does next."""

    def __init__(self, message: str, policy: Any, output: Any = None) -> None:
        super().__init__(message)
        self.policy = policy
        self.output = output


@workflow.defn
class RunbookWorkflow:
    """One runbook run."""

    @workflow.init
    def __init__(self, inp: RunbookInput) -> None:
        self._in = inp
        self._incident = inp.incident
        self._roles = dict(inp.roles)
        self._alert = inp.alert
        self._results: dict[str, StepResult] = {}
        self._visits: dict[str, int] = {}
        self._decision: ApprovalDecision | None = None
        self._abort: RunControl | None = None
        self._facts_seen = 0
        self._facts_version = 0
        self._outbox: list[RunbookEvent] = []
        self._escalate = False
        self._s = RunbookRunState(
            run_id=inp.run_id,
            runbook=inp.runbook.name,
            incident_id=inp.incident.id,
            dry_run=inp.dry_run,
            started_by=inp.started_by,
            started_at=workflow.now(),
        )

    @workflow.run
    async def run(self, inp: RunbookInput) -> RunbookRunState:
        """Run the steps; on failure, the runbook's on_failure; tell the incident throughout."""
        sender = asyncio.create_task(self._send_events())
        mode = " (dry run: actions only report what they would do)" if inp.dry_run else ""
        self._event("started", f"{inp.started_by} started runbook {inp.runbook.name}{mode}")
        body = asyncio.create_task(self._run_steps(inp.runbook.steps))
        error = await self._supervise(body)
        if error is None:
            self._s.status = "succeeded"
        elif self._abort is not None:
            self._s.status = "aborted"
            self._s.error = error
        else:
            self._s.error = error
            await self._on_runbook_failure()
            self._s.status = "failed"
        self._s.current_step = None
        self._s.pending = None
        self._s.ended_at = workflow.now()
        self._finish_event()
        await workflow.wait_condition(lambda: not self._outbox)
        sender.cancel()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._s

    async def _supervise(self, body: asyncio.Task[None]) -> str | None:
        """Wait for the steps, an abort, or the run's timeout; the error, or None."""
        timeout = self._in.runbook.timeout
        try:
            await workflow.wait_condition(
                lambda: body.done() or self._abort is not None, timeout=timeout
            )
        except TimeoutError:
            body.cancel()
            await workflow.wait([body])
            return f"the run did not finish within its timeout of {timeout}"
        if not body.done():
            body.cancel()
            await workflow.wait([body])
        if self._abort is not None:
            reason = f": {self._abort.reason}" if self._abort.reason else ""
            return f"aborted by {self._abort.actor}{reason}"
        exc = body.exception()
        if exc is None:
            return None
        if isinstance(exc, _StepFailed):
            return str(exc)
        raise exc

    async def _on_runbook_failure(self) -> None:
        handler = self._in.runbook.on_failure
        then = handler.then if isinstance(handler, FailureHandler) else handler
        if isinstance(handler, FailureHandler):
            self._s.in_failure_handler = True
            self._event("failure_handler", "running the runbook's on_failure steps")
            try:
                await self._run_steps(handler.run)
            except _StepFailed as failed:
                self._event("failure_handler_failed", f"on_failure steps failed: {failed}")
        if then == "escalate":
            self._escalate = True

    def _finish_event(self) -> None:
        s = self._s
        if s.status == "succeeded":
            text = f"runbook {s.runbook} succeeded"
        elif s.status == "aborted":
            text = f"runbook {s.runbook} {s.error}"
        else:
            text = f"runbook {s.runbook} failed: {s.error}"
        if self._escalate:
            text += "; escalating the incident"
        self._event("finished", text, escalate=self._escalate)

    # --- steps ---------------------------------------------------------------------------

    async def _run_steps(self, steps: Sequence[Step]) -> None:
        """Run ``steps`` in order; raise _StepFailed when the run must stop."""
        index = 0
        while index < len(steps):
            await self._while_paused()
            step = steps[index]
            visit = self._visits.get(step.id, 0) + 1
            self._visits[step.id] = visit
            record = StepRecord(
                step_id=step.id, kind=step.kind, visit=visit, started_at=workflow.now()
            )
            self._s.steps.append(record)
            self._s.current_step = step.id
            try:
                if visit > MAX_VISITS:
                    raise _StepFailed(
                        f"step {step.id} ran {MAX_VISITS} times: a goto loop", "abort"
                    )
                if not self._should_run(step):
                    skipped = f"{step.id} skipped: its condition is false"
                    self._done(record, "skipped", None, skipped)
                    index += 1
                    continue
                output = await self._execute(step, record)
            except _StepFailed as failed:
                self._done(record, "failed", failed.output, "", error=str(failed))
                policy = failed.policy
                if policy == "continue":
                    index += 1
                    continue
                if isinstance(policy, Goto):
                    index = next(i for i, s in enumerate(steps) if s.id == policy.goto)
                    continue
                if policy == "escalate":
                    self._escalate = True
                raise _StepFailed(f"step {step.id} failed: {failed}", "abort") from None
            self._done(record, "succeeded", output, record.summary)
            index += 1

    def _should_run(self, step: Step) -> bool:
        try:
            return should_run(step, self._context())
        except SubstitutionError as exc:
            raise _StepFailed(f"its if condition cannot be evaluated: {exc}", "abort") from None

    async def _execute(self, step: Step, record: StepRecord) -> Any:
        if isinstance(step, ActionStep):
            return await self._action(step, record)
        if isinstance(step, ApprovalStep):
            return await self._approval(step, record)
        if isinstance(step, WaitStep):
            return await self._wait(step, record)
        assert isinstance(step, CheckStep)
        return await self._check(step, record)

    def _done(
        self, record: StepRecord, status: Any, output: Any, summary: str, *, error: str = ""
    ) -> None:
        record.status = status
        record.output = output
        record.error = error
        record.ended_at = workflow.now()
        result_status = "succeeded" if status == "succeeded" else status
        self._results[record.step_id] = StepResult(status=result_status, output=output)
        if status == "succeeded":
            text = f"{record.step_id} succeeded" + (f": {summary}" if summary else "")
        elif status == "skipped":
            text = summary
        else:
            text = f"{record.step_id} failed: {error}"
        self._event(
            f"step_{status}",
            text,
            actor=record.actor,
            data={
                "step": record.step_id,
                "kind": record.kind,
                "visit": record.visit,
                "inputs": record.inputs,
                "attempts": record.attempts,
                "error": error,
            },
        )

    # --- action ----------------------------------------------------------------------------

    async def _action(self, step: ActionStep, record: StepRecord) -> Any:
        context = self._context()
        try:
            inputs = action_inputs(step, context)
            queue = self._queue_for(step, context)
        except SubstitutionError as exc:
            raise _StepFailed(str(exc), step.on_failure) from None
        record.inputs = inputs
        if step.action == PAGE:
            return self._page(inputs, record)
        request = ActionRequest(
            incident_id=self._incident.id,
            run_id=self._in.run_id,
            step_id=step.id,
            idempotency_key=f"{self._in.run_id}/{step.id}/{record.visit}",
            inputs=inputs,
            dry_run=self._in.dry_run,
            actor=self._last_approver() or self._in.started_by,
        )
        self._event("step_started", f"{step.id}: {step.action}", data={"inputs": inputs})
        try:
            result: ActionResult = await workflow.execute_activity(
                step.action,
                request,
                result_type=ActionResult,
                task_queue=queue,
                start_to_close_timeout=step.timeout,
                heartbeat_timeout=self._heartbeat_timeout(step.action),
                retry_policy=_retry_policy(step.retries),
            )
        except ActivityError as err:
            record.attempts = _attempts(err, step.retries)
            raise _StepFailed(activity_failure_reason(err), step.on_failure) from None
        record.attempts = max(result.attempt, 1)
        record.summary = result.summary
        return result.output

    @staticmethod
    def _heartbeat_timeout(action: str) -> timedelta | None:
        if action == "k8s.wait_rollout":
            return HEARTBEAT_TIMEOUT
        # Runs started before every k8s action beat keep scheduling them as they did.
        if action.startswith(HEARTBEATING_PREFIX) and workflow.patched(K8S_HEARTBEATS):
            return HEARTBEAT_TIMEOUT
        return None

    def _page(self, inputs: dict[str, Any], record: StepRecord) -> Any:
        # Built in, not an activity: the incident's own escalation pages, exactly once,
        # because the request is this workflow's event rather than a retried side effect.
        summary = str(inputs.get("summary") or f"runbook {self._in.runbook.name} needs people")
        record.attempts = 1
        if self._in.dry_run:
            record.summary = f"would page the next escalation level: {summary}"
            return {"paged": False}
        record.summary = f"paging the next escalation level: {summary}"
        self._event("page", summary, escalate=True)
        return {"paged": True}

    def _queue_for(self, step: ActionStep, context: RunContext) -> str | None:
        if step.cluster is None:
            return None
        name = substitute_text(step.cluster, context)
        queue = self._in.cluster_queues.get(name)
        if queue is None:
            known = ", ".join(sorted(self._in.cluster_queues)) or "none configured"
            raise SubstitutionError(f"unknown cluster {name!r} (clusters: {known})")
        return queue

    def _last_approver(self) -> str | None:
        for record in reversed(self._s.steps):
            if record.kind == "approval" and record.status == "succeeded":
                return record.actor
        return None

    # --- approval ---------------------------------------------------------------------------

    async def _approval(self, step: ApprovalStep, record: StepRecord) -> Any:
        try:
            prompt = substitute_text(step.prompt, self._context())
        except SubstitutionError as exc:
            raise _StepFailed(f"its prompt cannot be written: {exc}", "abort") from None
        approvers = step.approvers
        self._s.pending = PendingApproval(
            step_id=step.id,
            prompt=prompt,
            roles=list(approvers.roles),
            users=list(approvers.users),
            groups=list(approvers.groups),
            deadline=workflow.now() + step.timeout,
        )
        record.status = "waiting_approval"
        self._event(
            "approval_requested",
            f"{step.id} waits for approval by {_who(step)}: {prompt}",
            data={"step": step.id, "deadline": self._s.pending.deadline.isoformat()},
        )
        asked_at = workflow.now()
        try:
            decision = await self._decision_or_timeout(step)
        finally:
            self._s.pending = None
        # How long people take to decide: the number that says whether approvals slow
        # recovery. Metrics are not commands; the SDK drops them while replaying.
        workflow.metric_meter().create_histogram_timedelta(
            "fireline_approval_latency",
            "Time from an approval request to its decision, by runbook and outcome.",
            "ms",
        ).record(
            workflow.now() - asked_at,
            {
                "runbook": self._in.runbook.name,
                "decision": "approved" if decision.approve else "rejected",
                "by": "timeout" if decision.actor == "fireline" else "person",
            },
        )
        record.actor = decision.actor
        record.comment = decision.comment
        output = {"decision": "approved" if decision.approve else "rejected", "by": decision.actor}
        if decision.comment:
            output["comment"] = decision.comment
        if decision.approve:
            record.summary = f"approved by {decision.actor}" + _comment(decision)
            return output
        raise _StepFailed(
            f"rejected by {decision.actor}{_comment(decision)}", step.on_reject, output
        )

    async def _decision_or_timeout(self, step: ApprovalStep) -> ApprovalDecision:
        assert self._s.pending is not None
        while True:
            remaining = self._s.pending.deadline - workflow.now()
            try:
                await workflow.wait_condition(
                    lambda: self._decision is not None, timeout=max(remaining, timedelta(0))
                )
            except TimeoutError:
                if step.on_timeout == "escalate" and not self._s.pending.escalated:
                    self._s.pending.escalated = True
                    self._s.pending.deadline = workflow.now() + step.timeout
                    self._event(
                        "approval_escalated",
                        f"no decision on {step.id} within {step.timeout}: escalating the "
                        f"incident and waiting {step.timeout} more",
                        escalate=True,
                    )
                    continue
                approve = step.on_timeout == "approve"
                verdict = "approved" if approve else "rejected"
                return ApprovalDecision(
                    step_id=step.id,
                    approve=approve,
                    actor="fireline",
                    comment=f"no decision within the approval timeout: {verdict}",
                )
            decision, self._decision = self._decision, None
            assert decision is not None
            return decision

    @workflow.update
    def decide(self, cmd: ApprovalDecision) -> RunbookRunState:
        """Approve or reject the step that waits for a decision."""
        self._decision = cmd
        return self._s

    @decide.validator
    def _validate_decide(self, cmd: ApprovalDecision) -> None:
        self._require_not_ended()
        pending = self._s.pending
        if pending is None:
            raise _refuse(
                f"{cmd.step_id} is not waiting for approval in {self._in.run_id} "
                "(nothing is waiting)",
                INVALID_REQUEST,
            )
        if pending.step_id != cmd.step_id:
            raise _refuse(
                f"{cmd.step_id} is not waiting for approval in {self._in.run_id} "
                f"({pending.step_id} is)",
                INVALID_REQUEST,
            )
        if self._decision is not None:
            raise _refuse(
                f"{cmd.step_id} was already decided by {self._decision.actor}", INVALID_REQUEST
            )
        if not self._may_approve(cmd.actor, pending):
            raise _refuse(
                f"{cmd.actor} may not approve {cmd.step_id}: allowed are "
                f"{self._approvers_text(pending)}",
                NOT_ALLOWED,
            )

    def _may_approve(self, actor: str, pending: PendingApproval) -> bool:
        if self._in.users and actor not in self._in.users:
            return False
        if actor in pending.users:
            return True
        if any(self._roles.get(role) == actor for role in pending.roles):
            return True
        return any(actor in self._in.groups.get(group, []) for group in pending.groups)

    def _approvers_text(self, pending: PendingApproval) -> str:
        parts = [
            f"the {role} ({self._roles.get(role, 'nobody holds it')})" for role in pending.roles
        ]
        parts += pending.users
        parts += [f"members of {group}" for group in pending.groups]
        return ", ".join(parts)

    # --- wait --------------------------------------------------------------------------------

    async def _wait(self, step: WaitStep, record: StepRecord) -> Any:
        if step.duration is not None:
            await workflow.sleep(step.duration)
            record.summary = f"waited {step.duration}"
            return None
        assert step.until is not None
        assert step.timeout is not None
        deadline = workflow.now() + step.timeout
        while True:
            try:
                if evaluate(step.until, self._context()):
                    record.summary = "condition holds"
                    return None
            except SubstitutionError as exc:
                problem = f"its until condition cannot be evaluated: {exc}"
                raise _StepFailed(problem, step.on_failure) from None
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                raise _StepFailed(
                    f"the condition did not hold within {step.timeout}", step.on_failure
                )
            await self._facts_change_or(min(step.poll_interval, remaining))

    async def _facts_change_or(self, timeout: timedelta) -> None:
        seen = self._facts_version
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._facts_version != seen, timeout=timeout)

    # --- check ---------------------------------------------------------------------------

    async def _check(self, step: CheckStep, record: StepRecord) -> Any:
        try:
            query = substitute_text(step.query, self._context())
        except SubstitutionError as exc:
            raise _StepFailed(f"its query cannot be written: {exc}", step.on_failure) from None
        record.inputs = {"query": query, "provider": step.provider}
        if step.initial_delay > timedelta(0):
            await workflow.sleep(step.initial_delay)
        phases: list[AnalysisPhase] = []
        while True:
            phase, measurement = await self._measure(step, query)
            phases.append(phase)
            record.measurements.append(measurement)
            record.attempts = len(phases)
            outcome = assess_analysis(step, phases)
            if outcome is not None:
                break
            assert step.interval is not None
            await workflow.sleep(step.interval)
        counts = ", ".join(f"{phases.count(p)} {p.value}" for p in AnalysisPhase if p in phases)
        output = {"phase": outcome.value, "measurements": len(phases)}
        if outcome is AnalysisPhase.SUCCESSFUL:
            record.summary = f"analysis successful ({counts})"
            if not self._in.dry_run:
                self._event(
                    "check_passed",
                    f"{step.id}: recovery validated ({counts}); the incident is mitigated",
                    mitigated=True,
                )
            return output
        raise _StepFailed(f"analysis {outcome.value} ({counts})", step.on_failure, output)

    async def _measure(self, step: CheckStep, query: str) -> tuple[AnalysisPhase, Measurement]:
        try:
            sample: MetricSample = await workflow.execute_activity(
                "metrics.query",
                MetricQuery(source=step.provider, query=query),
                result_type=MetricSample,
                start_to_close_timeout=QUERY_TIMEOUT,
                retry_policy=_retry_policy(step.retries),
            )
        except ActivityError as err:
            # No answer is no evidence either way: inconclusive, as Argo counts errors.
            phase = AnalysisPhase.INCONCLUSIVE
            error = activity_failure_reason(err)
            return phase, Measurement(at=workflow.now(), phase=phase.value, error=error)
        phase = assess_measurement(step, sample.values)
        return phase, Measurement(at=workflow.now(), values=list(sample.values), phase=phase.value)

    # --- control -------------------------------------------------------------------------

    @workflow.update
    def pause(self, cmd: RunControl) -> RunbookRunState:
        """Stop before the next step until resumed."""
        self._s.status = "paused"
        self._s.paused_by = cmd.actor
        self._event("paused", f"{cmd.actor} paused the run" + _reason(cmd), actor=cmd.actor)
        return self._s

    @pause.validator
    def _validate_pause(self, cmd: RunControl) -> None:
        self._require_commander(cmd.actor, "pause")
        self._require_not_ended()
        if self._s.status == "paused":
            raise _refuse(f"{self._in.run_id} is already paused", INVALID_REQUEST)

    @workflow.update
    def resume(self, cmd: RunControl) -> RunbookRunState:
        """Go on after a pause."""
        self._s.status = "running"
        self._s.paused_by = None
        self._event("resumed", f"{cmd.actor} resumed the run" + _reason(cmd), actor=cmd.actor)
        return self._s

    @resume.validator
    def _validate_resume(self, cmd: RunControl) -> None:
        self._require_commander(cmd.actor, "resume")
        self._require_not_ended()
        if self._s.status != "paused":
            raise _refuse(f"{self._in.run_id} is not paused", INVALID_REQUEST)

    @workflow.update
    def abort(self, cmd: RunControl) -> RunbookRunState:
        """Stop the run now; the step in flight is cancelled."""
        self._abort = cmd
        return self._s

    @abort.validator
    def _validate_abort(self, cmd: RunControl) -> None:
        self._require_commander(cmd.actor, "abort")
        self._require_not_ended()
        if self._abort is not None:
            raise _refuse(f"{self._in.run_id} is already being aborted", INVALID_REQUEST)

    def _require_commander(self, actor: str, what: str) -> None:
        if self._in.users and actor not in self._in.users:
            raise _refuse(f"unknown user '{actor}'", NOT_ALLOWED)
        commander = self._roles.get("commander")
        # Without a commander, whoever may act on the incident steers its runs.
        if commander is not None and actor != commander:
            raise _refuse(
                f"only the commander ({commander}) may {what} {self._in.run_id}", NOT_ALLOWED
            )

    def _require_not_ended(self) -> None:
        if self._s.ended_at is not None or self._abort is not None:
            state = "aborted" if self._abort is not None else self._s.status
            raise _refuse(f"{self._in.run_id} has ended ({state})", INVALID_REQUEST)

    async def _while_paused(self) -> None:
        if self._s.status == "paused":
            await workflow.wait_condition(lambda: self._s.status != "paused")

    # --- facts from the incident -----------------------------------------------------------

    @workflow.signal
    def incident_changed(self, msg: IncidentFactsChanged) -> None:
        """The incident's status, severity or roles changed."""
        self._incident = msg.incident
        self._roles = dict(msg.roles)
        self._facts_version += 1

    @workflow.signal
    def alert_changed(self, msg: AlertStatusChanged) -> None:
        """The alert that started this run fired again or resolved."""
        if self._alert is not None:
            self._alert = self._alert.model_copy(update={"status": msg.status})
            self._facts_version += 1

    @workflow.query
    def state(self) -> RunbookRunState:
        """The run as it is now."""
        return self._s

    def _context(self) -> RunContext:
        return RunContext(
            incident=self._incident,
            alert=self._alert,
            params=self._in.params,
            steps=self._results,
        )

    # --- telling the incident ------------------------------------------------------------

    def _event(
        self,
        kind: str,
        text: str,
        *,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
        mitigated: bool = False,
        escalate: bool = False,
    ) -> None:
        pending = self._s.pending
        self._outbox.append(
            RunbookEvent(
                run_id=self._in.run_id,
                runbook=self._in.runbook.name,
                kind=kind,
                text=f"{self._in.run_id}: {text}",
                actor=actor,
                data=data or {},
                status=self._s.status,
                waiting_step=pending.step_id if pending else None,
                mitigated=mitigated,
                escalate=escalate,
            )
        )

    async def _send_events(self) -> None:
        """Signal the incident in order; a closed incident no longer listens."""
        incident = workflow.get_external_workflow_handle(self._in.incident_workflow_id)
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox))
            event = self._outbox[0]
            try:
                await incident.signal("runbook_event", event)
            except ApplicationError as exc:
                workflow.logger.warning("incident did not take %s: %s", event.kind, exc)
            self._outbox.pop(0)


def _retry_policy(retries: Retries) -> RetryPolicy:
    return RetryPolicy(
        initial_interval=retries.backoff,
        backoff_coefficient=retries.backoff_coefficient,
        maximum_interval=retries.max_backoff,
        maximum_attempts=retries.max_attempts,
    )


def _attempts(err: ActivityError, retries: Retries) -> int:
    if err.retry_state is RetryState.MAXIMUM_ATTEMPTS_REACHED:
        return retries.max_attempts
    return 0  # not known from the failure alone (e.g. a non-retryable error)


def _who(step: ApprovalStep) -> str:
    a = step.approvers
    parts = [f"the {r}" for r in a.roles] + list(a.users) + [f"members of {g}" for g in a.groups]
    return ", ".join(parts)


def _comment(decision: ApprovalDecision) -> str:
    return f" ({decision.comment})" if decision.comment else ""


def _reason(cmd: RunControl) -> str:
    return f": {cmd.reason}" if cmd.reason else ""

"""IncidentWorkflow: one incident, from declaration to close, as one durable workflow.

The workflow holds the incident's state; people change it only through Updates, whose
validators refuse what is not allowed before anything is written to history. The timeline
is the history of those Updates, in the words an incident review needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        ActionRequest,
        ActionResult,
        SimilarIncidents,
        SimilarRequest,
    )
    from runbooks.substitution import IncidentFacts, ParameterError, resolve_parameters
    from workflows import comms_policy
    from workflows import search_attributes as sa
    from workflows.alerts import AlertStatus
    from workflows.contracts import (
        DRILL_LABEL,
        Acknowledge,
        AddNote,
        AlertChange,
        AlertsChanged,
        AlertStatusChanged,
        AssignRole,
        Audience,
        Close,
        CommsEvent,
        CommsFacts,
        CommsInput,
        CommsNews,
        DeclareIncident,
        DeliverUpdate,
        Escalate,
        EscalateNow,
        EscalationInput,
        EscalationStop,
        IncidentFactsChanged,
        IncidentOutcome,
        IncidentState,
        IncidentStatus,
        MarkMitigated,
        MirrorItem,
        PagingEvent,
        PostmortemInput,
        PostUpdate,
        RefusalRecorded,
        Reopen,
        Resolve,
        Role,
        RunbookEvent,
        RunbookInput,
        RunSummary,
        SetSeverity,
        StakeholderUpdate,
        StartRunbook,
        TimelineEntry,
        TriageTarget,
        UpdateResult,
    )
    from workflows.failures import activity_failure_reason
    from workflows.history import history_is_long
    from workflows.lifecycle import Action, TransitionRefused, is_open, next_status
    from workflows.severity import ImpactFacts, ImpactLevel, Severity, classify

# ApplicationError types the API maps to HTTP statuses; tests assert them.
UNKNOWN_USER = "UnknownUser"
INVALID_TRANSITION = "InvalidTransition"
INVALID_REQUEST = "InvalidRequest"

S = IncidentStatus
# Without a route policy, an incident resolves with its alerts only below SEV2.
AUTO_RESOLVE_SEVERITIES = frozenset({Severity.SEV3, Severity.SEV4})


# How far back triage looks for rollouts, and how recent one must be to be suspected.
TRIAGE_WINDOW = "2h"
ROLLOUT_SUSPECT = timedelta(minutes=30)
# How long finding similar past incidents may take (it reads many incidents' states).
SIMILAR_TIMEOUT = timedelta(seconds=60)
# Update results carry only the newest timeline entries (see UpdateResult): enough for a
# caller to show what just happened, bounded however long the incident runs.
UPDATE_RESULT_TAIL = "update-result-timeline-tail"
UPDATE_RESULT_TIMELINE = 50
# A closed incident waits this long at most for its communications to finish reporting.
HEAR_COMMS_OUT = "hear-comms-out"
COMMS_END_WAIT = timedelta(minutes=10)
# Updates handled before communications started (in the incident's first task, after an
# outage of every worker) are delivered once it starts, and a resolved incident still gets it.
COMMS_CATCH_UP = "comms-catch-up"


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _refuse(message: str, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


@workflow.defn
class IncidentWorkflow:
    """The life of one incident."""

    @workflow.init
    def __init__(self, inp: DeclareIncident) -> None:
        # State is built here, not in run(), so Updates delivered in the first activation
        # (always the case right after continue-as-new) see it.
        self._input = inp
        self._config = inp.config
        # Search attributes are commands, which only run() may issue; it publishes first.
        self._running = False
        # What the escalation must hear (acknowledged, resolved, escalate now), in order.
        self._escalation_news: list[EscalationStop | EscalateNow] = []
        # What runbook runs must hear (incident facts, alert status), per run workflow id.
        self._run_news: list[tuple[str, IncidentFactsChanged | AlertStatusChanged]] = []
        self._run_forwarder: asyncio.Task[None] | None = None
        self._facts_told: tuple[str, str, str] | None = None
        self._triage_tasks: list[asyncio.Task[None]] = []
        # What the communications child must hear, in order (see _tell_comms).
        self._comms_news: list[CommsNews] = []
        self._comms_forwarder: asyncio.Task[None] | None = None
        self._comms_sending = False
        self._comms_facts_sent: CommsFacts | None = None
        # Set when the communications child this run started has ended (see _comms_ended).
        self._comms_ended = False
        self._comms_watcher: asyncio.Task[None] | None = None
        if inp.carried is not None:
            self._s = inp.carried
            return
        now = workflow.now()
        if inp.severity is not None:
            severity, reason = inp.severity, "set by the declarer"
        else:
            service = inp.config.service
            facts = inp.impact or ImpactFacts()
            if service and not facts.customer_tiers and facts.impact is not ImpactLevel.NONE:
                # Unless told otherwise, an impaired service affects every customer it serves.
                facts = facts.model_copy(update={"customer_tiers": service.customer_tiers})
            decision = classify(
                inp.config.severity_policy,
                facts,
                service_tier=service.tier if service else None,
                at=now,
            )
            if decision.rule is None:
                # Listing every rule that missed helps nobody at 3 a.m.; the last line says it.
                reason = decision.reasons[-1]
            else:
                reason = f"rule '{decision.rule}': " + "; ".join(decision.reasons)
            severity = decision.severity
        self._s = IncidentState(
            id=inp.id,
            title=inp.title,
            service=inp.service,
            severity=severity,
            severity_reason=reason,
            summary=inp.summary,
            labels=inp.labels,
            declared_by=inp.declared_by,
            declared_at=now,
        )
        if inp.labels.get(DRILL_LABEL) == "true":
            self._s.drill = True
        who = inp.declared_by or "fireline"
        self._record(
            "declared",
            f"{who} declared {severity.value} on {inp.service}: {inp.title}",
            actor=inp.declared_by,
            data={"severity": severity.value, "severity_reason": reason},
        )
        if self._s.drill:
            self._record("drill", "this is a drill: practice, not an outage")
        if inp.commander:
            self._set_role(Role.COMMANDER, inp.commander, actor=inp.declared_by)

    @workflow.run
    async def run(self, inp: DeclareIncident) -> IncidentOutcome:
        """Wait for people to move the incident along; close it when its time comes."""
        self._running = True
        self._publish()
        # Paging arrived after incidents already in flight: their histories have no child.
        if workflow.patched("escalation-v1"):
            await self._start_escalation()
        if self._s.escalation_id is not None:
            # Deterministic: the workflow's event loop schedules the task.
            self._forwarder = asyncio.create_task(self._forward_to_escalation())
        if self._active_runs():
            # Carried over continue-as-new: the runs still need the incident's news.
            self._ensure_run_forwarder()
        # Communications arrived after incidents already in flight: no child in their past.
        if inp.carried is None and workflow.patched("comms-v1"):
            await self._start_comms()
        if self._s.comms_id is not None:
            self._comms_forwarder = asyncio.create_task(self._forward_to_comms())
        if inp.carried is None:
            for cmd in inp.runbooks:
                await self._start_matched_runbook(cmd)
            # Decided by the input alone (incidents declared before triage have none), so
            # replaying older histories never reaches it.
            for target in inp.triage:
                self._triage_tasks.append(asyncio.create_task(self._triage(target)))
            # In the background: suggestions help the responders, never delay paging.
            if self._config.suggest_similar and workflow.patched("similar-incidents"):
                self._triage_tasks.append(asyncio.create_task(self._suggest_similar()))
        while not self._closed():
            if self._s.status is S.RESOLVED:
                await self._start_postmortem()
                await self._wait_while_resolved()
            else:
                await workflow.wait_condition(
                    lambda: self._s.status in (S.RESOLVED, S.CLOSED) or self._history_is_long()
                )
            if not self._closed() and self._history_is_long():
                await self._continue_as_new()
        await workflow.wait_condition(workflow.all_handlers_finished)
        # Closed without passing through resolved (closed from declared): still learn from it.
        await self._start_postmortem()
        # Communications ends when it hears the incident closed: tell it before finishing.
        await workflow.wait_condition(self._comms_drained)
        await self._hear_comms_out()
        return IncidentOutcome(
            id=self._s.id,
            status=self._s.status,
            severity=self._s.severity,
            declared_at=self._s.declared_at,
            acknowledged_at=self._s.acknowledged_at,
            mitigated_at=self._s.mitigated_at,
            resolved_at=self._s.resolved_at,
            closed_at=self._s.closed_at,
        )

    async def _wait_while_resolved(self) -> None:
        # Measured from resolved_at, so continue-as-new does not restart the window.
        assert self._s.resolved_at is not None
        deadline = self._s.resolved_at + self._config.settings.reopen_window
        remaining = deadline - workflow.now()
        if remaining > timedelta(0):
            try:
                await workflow.wait_condition(
                    lambda: self._s.status is not S.RESOLVED or self._history_is_long(),
                    timeout=remaining,
                )
                return
            except TimeoutError:
                pass
        self._close(actor=None, text="closed: the reopen window passed")

    async def _start_escalation(self) -> None:
        snapshot = self._config.escalation
        if snapshot is None or self._s.escalation_id is not None or not is_open(self._s.status):
            return
        escalation_id = f"escalation-{self._s.id}"
        team = self._config.service.owner_team if self._config.service else None
        await workflow.start_child_workflow(
            "EscalationWorkflow",
            EscalationInput(
                snapshot=snapshot,
                incident_workflow_id=workflow.info().workflow_id,
                title=self._s.title,
                severity=self._s.severity,
                service=self._s.service,
                team=team or "",
                summary=self._s.summary,
            ),
            id=escalation_id,
            # Outlives continue-as-new of the incident; it ends itself on resolution.
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self._s.escalation_id = escalation_id
        self._record(
            "escalation",
            f"paging started with escalation policy '{snapshot.policy.name}'",
            data={"policy": snapshot.policy.name},
        )

    async def _start_postmortem(self) -> None:
        """On the first resolution: the postmortem, which outlives the incident."""
        s = self._s
        if s.postmortem_id is not None or (s.resolved_at is None and s.closed_at is None):
            return
        settings = self._config.postmortem
        # Decided by the input first: histories without postmortem config never reach the
        # patch, so they replay unchanged.
        if settings is None or not workflow.patched("postmortem-v1"):
            return
        postmortem_id = f"postmortem-{s.id}"
        s.postmortem_id = postmortem_id
        await workflow.start_child_workflow(
            "PostmortemWorkflow",
            PostmortemInput.for_incident(
                s,
                workflow.info().workflow_id,
                settings,
                # Re-read the record once the reopen window is over, so the close is in it.
                refresh_after=self._config.settings.reopen_window + timedelta(minutes=1),
            ),
            id=postmortem_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self._record(
            "postmortem_started",
            f"the postmortem draft is ready: fireline postmortem show {s.id}",
            data={"postmortem": postmortem_id},
        )

    async def _start_comms(self) -> None:
        comms = self._config.comms
        if comms is None:
            return
        # Updates admitted while no worker ran are handled before this point, in the same
        # task: they may have posted updates (never delivered: no comms yet) and resolved the
        # incident, which used to leave it with no war room and no status page. Decided
        # only in that case, so ordinary incidents record no marker.
        early = list(self._s.updates)
        catch_up = bool(early or not is_open(self._s.status)) and workflow.patched(COMMS_CATCH_UP)
        if not catch_up:
            early = []
            if not is_open(self._s.status):
                return
        elif not is_open(self._s.status):
            # Communications opens no war room for an incident that is already over.
            self._record(
                "comms_after_resolve",
                f"communications started after the incident was {self._s.status.value} "
                "(no worker ran before): no war room; updates go to the status page and "
                "this timeline",
            )
        comms_id = f"comms-{self._s.id}"
        self._s.next_update_due = comms_policy.next_update_due(
            comms, self._s.severity, self._s.status, self._s.declared_at, self._s.updates
        )
        facts = self._comms_facts()
        # Set before the child has started: Updates handled meanwhile queue their news,
        # which the forwarder (started once the child runs) delivers.
        self._s.comms_id = comms_id
        self._comms_facts_sent = facts
        for update in early:
            self._deliver_update(update)
        child = await workflow.start_child_workflow(
            "CommsWorkflow",
            CommsInput(
                incident_workflow_id=workflow.info().workflow_id,
                snapshot=comms,
                facts=facts,
            ),
            id=comms_id,
            # Outlives continue-as-new of the incident; it ends itself when the incident closes.
            parent_close_policy=ParentClosePolicy.ABANDON,
        )

        async def watch() -> None:
            # Its outcome is its own business: only that it has ended matters here.
            with contextlib.suppress(Exception):
                await child
            self._comms_ended = True

        self._comms_watcher = asyncio.create_task(watch())

    async def _hear_comms_out(self) -> None:
        """Stay until communications has ended, so its last reports reach the record.

        Closed right after resolving, the incident used to finish while the status page
        was still being resolved and the war room still written to: their reports found it
        gone, and its record lacked the status page and the room (found by make chaos).
        Bounded, so a vendor that stays down cannot keep a closed incident running.
        """
        if self._comms_watcher is None or not workflow.patched(HEAR_COMMS_OUT):
            return
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(lambda: self._comms_ended, timeout=COMMS_END_WAIT)

    def _comms_facts(self) -> CommsFacts:
        s = self._s
        return CommsFacts(
            incident_id=s.id,
            title=s.title,
            service=s.service,
            severity=s.severity,
            status=s.status,
            summary=s.summary,
            roles=dict(s.roles),
            next_update_due=s.next_update_due,
        )

    def _tell_comms(self, news: CommsNews) -> None:
        if self._s.comms_id is None:
            return
        if news.facts is not None:
            if news.facts == self._comms_facts_sent:
                news = news.model_copy(update={"facts": None})
            else:
                self._comms_facts_sent = news.facts
        if news.facts is not None or news.mirror or news.deliver:
            self._comms_news.append(news)

    async def _forward_to_comms(self) -> None:
        assert self._s.comms_id is not None
        child = workflow.get_external_workflow_handle(self._s.comms_id)
        while True:
            await workflow.wait_condition(lambda: bool(self._comms_news))
            batch, self._comms_news = self._comms_news, []
            facts = [n.facts for n in batch if n.facts is not None]
            merged = CommsNews(
                facts=facts[-1] if facts else None,
                mirror=[m for n in batch for m in n.mirror],
                deliver=[d for n in batch for d in n.deliver],
            )
            self._comms_sending = True
            try:
                await child.signal("tell", merged)
            except Exception as exc:  # any failure: say it, and keep the incident going
                self._record("comms_failed", f"communications did not hear the news: {exc}")
            finally:
                self._comms_sending = False

    def _comms_drained(self) -> bool:
        return not self._comms_news and not self._comms_sending

    def _tell_customers_resolved(self) -> None:
        """Customers who were told of the incident are told it is over."""
        comms = self._config.comms
        told = [u for u in self._s.updates if Audience.CUSTOMERS in u.audiences]
        if comms is None or not told or told[-1].status.value == "resolved":
            return
        self._stakeholder_update("fireline", comms.resolved_text)

    async def _forward_to_escalation(self) -> None:
        assert self._s.escalation_id is not None
        child = workflow.get_external_workflow_handle(self._s.escalation_id)
        while True:
            await workflow.wait_condition(lambda: bool(self._escalation_news))
            news = self._escalation_news.pop(0)
            name = "escalate_now" if isinstance(news, EscalateNow) else "stop"
            await child.signal(name, news)

    def _tell_escalation(self, news: EscalationStop | EscalateNow) -> None:
        if self._s.escalation_id is not None:
            self._escalation_news.append(news)

    def _closed(self) -> bool:
        # A method, not an inline test: Updates change the status between awaits.
        return self._s.status is S.CLOSED

    def _history_is_long(self) -> bool:
        return history_is_long(self._config.settings.max_history_events)

    async def _continue_as_new(self) -> None:
        await workflow.wait_condition(workflow.all_handlers_finished)
        # News not yet told to communications would be lost with this run.
        await workflow.wait_condition(self._comms_drained)
        carried = self._s.model_copy(update={"generation": self._s.generation + 1})
        workflow.logger.info("continuing as new (generation %d)", carried.generation)
        workflow.continue_as_new(self._input.model_copy(update={"carried": carried}))

    # --- queries ---------------------------------------------------------------------------

    @workflow.query
    def state(self) -> IncidentState:
        """The incident as it is now, timeline included."""
        return self._s

    @workflow.query
    def timeline(self) -> list[TimelineEntry]:
        """The incident's timeline, oldest first."""
        return self._s.timeline

    # --- updates -----------------------------------------------------------------------------

    @workflow.update
    def acknowledge(self, cmd: Acknowledge) -> UpdateResult:
        """Someone owns the response; stops escalation."""
        self._s.status = self._next(Action.ACKNOWLEDGE)
        self._mark_acknowledged(cmd.actor)
        self._tell_escalation(EscalationStop(reason="acknowledged", actor=cmd.actor))
        return self._result(
            self._record("acknowledged", f"{cmd.actor} acknowledged", actor=cmd.actor)
        )

    @acknowledge.validator
    def _validate_acknowledge(self, cmd: Acknowledge) -> None:
        self._require_user(cmd.actor)
        self._next(Action.ACKNOWLEDGE)

    @workflow.update
    def assign_role(self, cmd: AssignRole) -> UpdateResult:
        """Give a role to a user, or vacate it."""
        return self._result(self._set_role(cmd.role, cmd.user, actor=cmd.actor))

    @assign_role.validator
    def _validate_assign_role(self, cmd: AssignRole) -> None:
        self._require_user(cmd.actor)
        self._require_not_closed()
        holder = self._s.roles.get(cmd.role)
        if cmd.user is None:
            if holder is None:
                raise _refuse(f"nobody holds the {cmd.role.value} role", INVALID_REQUEST)
            return
        self._require_user(cmd.user)
        if holder == cmd.user:
            raise _refuse(f"{cmd.user} is already {cmd.role.value}", INVALID_REQUEST)

    @workflow.update
    def set_severity(self, cmd: SetSeverity) -> UpdateResult:
        """Change severity, with the reason on the timeline."""
        old = self._s.severity
        self._s.severity = cmd.severity
        self._s.severity_reason = f"set by {cmd.actor}: {cmd.reason}"
        self._publish()
        direction = "raised" if _rank(cmd.severity) < _rank(old) else "lowered"
        return self._result(
            self._record(
                "severity_changed",
                f"{cmd.actor} {direction} severity {old.value} → {cmd.severity.value}: "
                f"{cmd.reason}",
                actor=cmd.actor,
                data={"from": old.value, "to": cmd.severity.value, "reason": cmd.reason},
            )
        )

    @set_severity.validator
    def _validate_set_severity(self, cmd: SetSeverity) -> None:
        self._require_user(cmd.actor)
        self._require_not_closed()
        if cmd.severity is self._s.severity:
            raise _refuse(f"{self._s.id} is already {cmd.severity.value}", INVALID_REQUEST)

    @workflow.update
    def add_note(self, cmd: AddNote) -> UpdateResult:
        """A free-text note on the timeline."""
        return self._result(self._record("note", cmd.text, actor=cmd.actor))

    @add_note.validator
    def _validate_add_note(self, cmd: AddNote) -> None:
        self._require_user(cmd.actor)
        self._require_not_closed()

    @workflow.update
    def post_update(self, cmd: PostUpdate) -> UpdateResult:
        """A stakeholder update, written once and delivered to each audience in its form."""
        update = self._stakeholder_update(cmd.actor, cmd.text, cmd)
        return self._result(update)

    @post_update.validator
    def _validate_post_update(self, cmd: PostUpdate) -> None:
        self._require_user(cmd.actor)
        self._require_not_closed()
        if not cmd.text.strip():
            raise _refuse("an update needs text", INVALID_REQUEST)
        if not cmd.audiences:
            raise _refuse("an update needs at least one audience", INVALID_REQUEST)
        comms = self._config.comms
        too_long = comms_policy.limit_problem(comms, cmd.text, cmd.audiences)
        if too_long:
            raise _refuse(too_long, INVALID_REQUEST)
        known = set(comms.all_components) if comms else set()
        unknown = sorted(set(cmd.components or {}) - known)
        if unknown:
            listed = ", ".join(sorted(known)) or "none are configured"
            raise _refuse(
                f"unknown status page component(s) {', '.join(unknown)} (known: {listed})",
                INVALID_REQUEST,
            )

    def _stakeholder_update(
        self, actor: str, text: str, cmd: PostUpdate | None = None
    ) -> TimelineEntry:
        """Record an update, then hand its rendered, redacted copies to communications."""
        s, comms = self._s, self._config.comms
        last = s.updates[-1] if s.updates else None
        status = (cmd.status if cmd else None) or comms_policy.public_status_for(s.status)
        impact = (
            (cmd.impact if cmd else None)
            or (last.impact if last else None)
            or comms_policy.impact_for(s.severity)
        )
        components = (cmd.components if cmd else None) or (
            comms_policy.components_for(comms, s.severity, status, last) if comms else {}
        )
        audiences = list(cmd.audiences) if cmd else [Audience.RESPONDERS, Audience.CUSTOMERS]
        update = StakeholderUpdate(
            id=f"{s.id}-u{len(s.updates) + 1}",
            at=workflow.now(),
            actor=actor,
            text=text,
            status=status,
            impact=impact,
            components=components,
            audiences=audiences,
        )
        s.updates.append(update)
        self._refresh_update_due()
        entry = self._record(
            "stakeholder_update",
            f"{actor} posted update {update.id} ({status.value}) for "
            f"{', '.join(a.value for a in audiences)}: {text}",
            actor=actor if actor != "fireline" else None,
            data={"update_id": update.id, "status": status.value, "impact": impact.value},
            # The responders' copy is posted in the war room by delivery, in their template;
            # mirroring the entry too put the same update in the thread twice. Either way the
            # news reaches the comms child in the same signal, so the commands are the same.
            mirror=Audience.RESPONDERS not in audiences,
        )
        self._deliver_update(update)
        return entry

    def _deliver_update(self, update: StakeholderUpdate) -> None:
        """Hand the update's rendered, redacted copies to communications (once it runs)."""
        s, comms = self._s, self._config.comms
        if comms is not None and s.comms_id is not None:
            fields = {
                "incident_id": s.id,
                "title": s.title,
                "service": s.service,
                "severity": s.severity.value,
                "status": update.status.value,
                "impact": update.impact.value,
                "text": update.text,
                "components": ", ".join(sorted(update.components)),
            }
            texts = {
                a: (
                    comms_policy.render(comms.audiences[a], fields)
                    if a in comms.audiences
                    else update.text
                )
                for a in update.audiences
            }
            customers = comms.audiences.get(Audience.CUSTOMERS)
            public_title = comms_policy.redact(s.title, customers.redact) if customers else s.title
            self._tell_comms(
                CommsNews(
                    deliver=[DeliverUpdate(update=update, texts=texts, public_title=public_title)]
                )
            )

    def _refresh_update_due(self) -> None:
        due = comms_policy.next_update_due(
            self._config.comms,
            self._s.severity,
            self._s.status,
            self._s.declared_at,
            self._s.updates,
        )
        if due != self._s.next_update_due:
            self._s.next_update_due = due
        self._tell_comms(CommsNews(facts=self._comms_facts()))

    @workflow.update
    def mark_mitigated(self, cmd: MarkMitigated) -> UpdateResult:
        """Customer impact has stopped."""
        self._s.status = self._next(Action.MITIGATE)
        return self._result(
            self._mitigated(cmd.actor, f"{cmd.actor} marked the incident mitigated", cmd.summary)
        )

    def _mitigated(self, actor: str, text: str, summary: str) -> TimelineEntry:
        self._s.mitigated_at = workflow.now()
        implicit_ack = self._mark_acknowledged(actor)
        self._tell_escalation(EscalationStop(reason="acknowledged", actor=actor))
        if summary:
            text += f": {summary}"
        if implicit_ack:
            text += " (this is also the first acknowledgement)"
        return self._record("mitigated", text, actor=actor, data={"summary": summary})

    @mark_mitigated.validator
    def _validate_mark_mitigated(self, cmd: MarkMitigated) -> None:
        self._require_user(cmd.actor)
        self._next(Action.MITIGATE)

    @workflow.update
    def resolve(self, cmd: Resolve) -> UpdateResult:
        """The incident is over; it can be reopened until its reopen window passes."""
        self._s.status = self._next(Action.RESOLVE)
        now = workflow.now()
        self._s.resolved_at = now
        self._s.mitigated_at = self._s.mitigated_at or now
        self._s.resolution_summary = cmd.summary
        self._publish()
        self._tell_escalation(EscalationStop(reason="resolved", actor=cmd.actor))
        entry = self._record(
            "resolved",
            f"{cmd.actor} resolved the incident: {cmd.summary}",
            actor=cmd.actor,
            data={"summary": cmd.summary},
        )
        self._tell_customers_resolved()
        return self._result(entry)

    @resolve.validator
    def _validate_resolve(self, cmd: Resolve) -> None:
        self._require_user(cmd.actor)
        self._next(Action.RESOLVE)

    @workflow.update
    def reopen(self, cmd: Reopen) -> UpdateResult:
        """The problem came back before the incident closed."""
        self._s.status = self._next(Action.REOPEN)
        self._s.resolved_at = None
        self._s.resolution_summary = None
        self._publish()
        return self._result(
            self._record("reopened", f"{cmd.actor} reopened: {cmd.reason}", actor=cmd.actor)
        )

    @reopen.validator
    def _validate_reopen(self, cmd: Reopen) -> None:
        self._require_user(cmd.actor)
        self._next(Action.REOPEN)

    @workflow.update
    def close(self, cmd: Close) -> UpdateResult:
        """Close a resolved incident now instead of at the end of its reopen window."""
        return self._result(self._close(actor=cmd.actor, text=f"{cmd.actor} closed the incident"))

    @close.validator
    def _validate_close(self, cmd: Close) -> None:
        self._require_user(cmd.actor)
        self._next(Action.CLOSE)

    @workflow.update
    def escalate(self, cmd: Escalate) -> UpdateResult:
        """Page the next level now instead of waiting for the level's delay."""
        self._tell_escalation(EscalateNow(actor=cmd.actor))
        return self._result(
            self._record(
                "escalation", f"{cmd.actor} escalated to the next level now", actor=cmd.actor
            )
        )

    @escalate.validator
    def _validate_escalate(self, cmd: Escalate) -> None:
        self._require_user(cmd.actor)
        if self._s.escalation_id is None:
            raise _refuse(f"{self._s.id} is not paging anyone", INVALID_REQUEST)
        if self._s.status is not S.DECLARED:
            raise _refuse(
                f"{self._s.id} is {self._s.status.value}: paging has stopped", INVALID_TRANSITION
            )

    @workflow.update
    async def start_runbook(self, cmd: StartRunbook) -> RunSummary:
        """Run a runbook for this incident, as a child workflow."""
        return await self._start_run(cmd)

    async def _start_matched_runbook(self, cmd: StartRunbook) -> None:
        # An alert's runbook that cannot start is said on the timeline, never dropped.
        try:
            resolve_parameters(cmd.runbook.parameters, cmd.params)
        except ParameterError as exc:
            self._record(
                "runbook_not_started",
                f"the alert matched runbook {cmd.runbook.name}, which cannot start: {exc}",
                data={"runbook": cmd.runbook.name},
            )
            return
        await self._start_run(cmd)

    async def _start_run(self, cmd: StartRunbook) -> RunSummary:
        params = resolve_parameters(cmd.runbook.parameters, cmd.params)
        run_id = f"{self._s.id}-r{len(self._s.runs) + 1}"
        summary = RunSummary(
            run_id=run_id,
            workflow_id=f"runbook-{run_id}",
            runbook=cmd.runbook.name,
            dry_run=cmd.dry_run,
            started_by=cmd.actor,
            started_at=workflow.now(),
        )
        # Reserved before the await, so a second start in the meantime gets the next id.
        self._s.runs.append(summary)
        await workflow.start_child_workflow(
            "RunbookWorkflow",
            RunbookInput(
                run_id=run_id,
                incident_workflow_id=workflow.info().workflow_id,
                runbook=cmd.runbook,
                params=params,
                alert=cmd.alert,
                incident=self._facts(),
                roles={role.value: user for role, user in self._s.roles.items()},
                users=sorted(self._config.users),
                groups=cmd.groups,
                dry_run=cmd.dry_run,
                started_by=cmd.actor,
                cluster_queues=cmd.cluster_queues,
            ),
            id=summary.workflow_id,
            # Outlives continue-as-new of the incident, like the escalation.
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self._ensure_run_forwarder()
        mode = " as a dry run" if cmd.dry_run else ""
        self._record(
            "runbook_started",
            f"{cmd.actor} started runbook {cmd.runbook.name}{mode} ({run_id})",
            actor=cmd.actor if cmd.actor != "fireline" else None,
            data={"run_id": run_id, "runbook": cmd.runbook.name, "params": params},
        )
        return summary

    @start_runbook.validator
    def _validate_start_runbook(self, cmd: StartRunbook) -> None:
        if cmd.actor != "fireline":  # fireline itself starts runbooks that alerts match
            self._require_user(cmd.actor)
        if not is_open(self._s.status):
            raise _refuse(
                f"{self._s.id} is {self._s.status.value}: runbooks run only while it is open",
                INVALID_TRANSITION,
            )
        for run in self._active_runs():
            if run.runbook == cmd.runbook.name and not cmd.dry_run and not run.dry_run:
                raise _refuse(
                    f"runbook {cmd.runbook.name} is already running for {self._s.id} "
                    f"({run.run_id})",
                    INVALID_REQUEST,
                )
        try:
            resolve_parameters(cmd.runbook.parameters, cmd.params)
        except ParameterError as exc:
            raise _refuse(str(exc), INVALID_REQUEST) from None

    @workflow.signal
    def runbook_event(self, event: RunbookEvent) -> None:
        """A run started, moved, waited, passed a check, failed or finished."""
        for run in self._s.runs:
            if run.run_id == event.run_id:
                run.status = event.status
                run.waiting_step = event.waiting_step
        self._record(
            f"runbook_{event.kind}",
            event.text,
            actor=event.actor,
            data={"run_id": event.run_id, "runbook": event.runbook, **event.data},
        )
        who = f"runbook {event.runbook} ({event.run_id})"
        if event.mitigated and self._s.status in (S.DECLARED, S.ACKNOWLEDGED):
            self._s.status = next_status(self._s.status, Action.MITIGATE, self._s.id)
            self._mitigated(who, f"{who} validated recovery", "")
        if event.escalate:
            if self._s.escalation_id is not None and self._s.status is S.DECLARED:
                self._tell_escalation(EscalateNow(actor=who))
                self._record("escalation", f"{who} escalated to the next level now")
            else:
                self._record(
                    "escalation_requested",
                    f"{who} asks for more people; nobody is being paged by fireline now, "
                    "so the commander should bring them in",
                )

    async def _suggest_similar(self) -> None:
        """Past incidents like this one, and the runbooks that resolved them."""
        s = self._s
        request = SimilarRequest(
            incident_id=s.id,
            service=s.service,
            title=s.title,
            summary=s.summary,
            labels=s.labels,
            alert_names=sorted({change.alertname for change in s.alerts.values()}),
            drill=s.drill,
        )
        try:
            found: SimilarIncidents = await workflow.execute_activity(
                "knowledge.similar",
                request,
                result_type=SimilarIncidents,
                start_to_close_timeout=SIMILAR_TIMEOUT,
                # Bounded: with no worker offering it (an older worker), give up quietly.
                schedule_to_close_timeout=SIMILAR_TIMEOUT * 2,
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            workflow.logger.warning(
                "no similar-incident suggestions: %s", activity_failure_reason(err)
            )
            return
        if found.suggestions:
            self._record("similar_incidents", found.text, data=found.model_dump(mode="json"))

    async def _triage(self, target: TriageTarget) -> None:
        """What changed recently where the service runs; propose a rollback if it fits."""
        where = f"{target.cluster}/{target.namespace}"
        try:
            result: ActionResult = await workflow.execute_activity(
                "k8s.recent_changes",
                ActionRequest(
                    incident_id=self._s.id,
                    run_id=f"{self._s.id}-triage",
                    step_id=f"recent-changes-{target.service}",
                    idempotency_key=f"{self._s.id}/triage/{target.service}",
                    inputs={"namespaces": [target.namespace], "since": TRIAGE_WINDOW},
                ),
                result_type=ActionResult,
                task_queue=target.queue,
                # Triage helps; it must never hold the incident up when a cluster is away.
                schedule_to_close_timeout=timedelta(minutes=2),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError as err:
            self._record(
                "triage_failed",
                f"triage: could not read recent changes in {where}: {activity_failure_reason(err)}",
                data={"service": target.service, "cluster": target.cluster},
            )
            return
        changes = result.output.get("changes")
        rows = [c for c in changes if isinstance(c, dict)] if isinstance(changes, list) else []
        if not rows:
            self._record(
                "triage",
                f"triage: no rollouts in {where} in the last {TRIAGE_WINDOW}",
                data={"service": target.service, "cluster": target.cluster},
            )
            return
        lines = [
            f"{c.get('deployment')} revision {c.get('revision')} ({c.get('image')}) at "
            f"{c.get('time')}"
            for c in rows[:5]
        ]
        self._record(
            "triage",
            f"triage: recent rollouts in {where}: " + "; ".join(lines),
            data={"service": target.service, "cluster": target.cluster, "changes": rows[:5]},
        )
        latest = rows[0]
        at = _parse_time(latest.get("time"))
        if at is not None and timedelta(0) <= self._s.declared_at - at <= ROLLOUT_SUSPECT:
            minutes = int((self._s.declared_at - at).total_seconds() // 60)
            self._record(
                "triage_suggestion",
                f"triage: {target.namespace}/{latest.get('deployment')} rolled out "
                f"{minutes} min before this incident; consider the rollback runbook: "
                f"fireline runbook run {self._s.id} bad-deploy-rollback "
                f"--param namespace={target.namespace} "
                f"--param deployment={latest.get('deployment')}",
                data={"runbook": "bad-deploy-rollback", "deployment": latest.get("deployment")},
            )

    def _active_runs(self) -> list[RunSummary]:
        return [r for r in self._s.runs if r.status in ("running", "paused")]

    def _facts(self) -> IncidentFacts:
        return IncidentFacts(
            id=self._s.id,
            title=self._s.title,
            service=self._s.service,
            severity=self._s.severity.value,
            status=self._s.status.value,
        )

    def _tell_runs(self, news: IncidentFactsChanged | AlertStatusChanged) -> None:
        for run in self._active_runs():
            self._run_news.append((run.workflow_id, news))

    def _ensure_run_forwarder(self) -> None:
        if self._run_forwarder is None:
            self._run_forwarder = asyncio.create_task(self._forward_to_runs())

    async def _forward_to_runs(self) -> None:
        while True:
            await workflow.wait_condition(lambda: bool(self._run_news))
            workflow_id, news = self._run_news.pop(0)
            name = "alert_changed" if isinstance(news, AlertStatusChanged) else "incident_changed"
            try:
                await workflow.get_external_workflow_handle(workflow_id).signal(name, news)
            except ApplicationError as exc:  # the run ended in the meantime
                workflow.logger.info("run %s did not take %s: %s", workflow_id, name, exc)

    def _facts_may_have_changed(self) -> None:
        if not self._s.runs:
            return
        roles = {role.value: user for role, user in self._s.roles.items()}
        told = (self._s.status.value, self._s.severity.value, repr(sorted(roles.items())))
        if told != self._facts_told:
            self._facts_told = told
            self._tell_runs(IncidentFactsChanged(incident=self._facts(), roles=roles))

    @workflow.signal
    def comms_event(self, event: CommsEvent) -> None:
        """Communications opened the war room, delivered an update, reminded someone."""
        if event.room is not None:
            self._s.war_room = event.room
        if event.published is not None:
            self._s.status_page = event.published
        for update in self._s.updates:
            if update.id == event.update_id:
                update.deliveries = event.deliveries
        data: dict[str, Any] = {}
        if event.update_id:
            data["update_id"] = event.update_id
        if event.room is not None:
            data["room"] = event.room.model_dump(exclude_none=True)
        self._record(event.kind, event.text, data=data)

    @workflow.signal
    def paging_event(self, event: PagingEvent) -> None:
        """A page went out, failed or was closed; the policy moved on or ran out."""
        kind = {"paged": "page", "page_failed": "page_failed", "page_closed": "page_closed"}.get(
            event.kind, "escalation"
        )
        self._record(kind, event.text, data=event.model_dump(exclude_none=True))

    @workflow.signal
    def record_refusal(self, refusal: RefusalRecorded) -> None:
        """Put a refused action on the timeline (validators cannot write history)."""
        self._record(
            "refused",
            f"refused {refusal.action} by {refusal.actor}: {refusal.reason}",
            actor=refusal.actor,
            data={"action": refusal.action, "reason": refusal.reason},
        )

    @workflow.signal
    def alerts_changed(self, msg: AlertsChanged) -> None:
        """Alerts of a group attached to this incident fired, resolved or were suppressed."""
        if self._closed():
            workflow.logger.info("ignoring alerts for a closed incident from %s", msg.group_key)
            return
        if msg.group_key not in self._s.alert_groups:
            self._s.alert_groups.append(msg.group_key)
            if msg.cascade_note:
                self._record("cascade", f"alerts attached as a {msg.cascade_note}")
        fired_again = False
        resolved_at = self._s.resolved_at
        for change in msg.changes:
            if self._s.alerts.get(change.fingerprint) == change:
                continue  # a re-delivered signal (activity retry) changes nothing
            self._s.alerts[change.fingerprint] = change
            self._record_alert(change)
            if change.status is AlertStatus.FIRING:
                # Only a firing that began after the resolution is the problem coming back;
                # one that began before was merely reported late. (Patched: earlier code
                # reopened on any firing change.)
                late = resolved_at is not None and change.starts_at <= resolved_at
                fired_again |= not (late and workflow.patched("reopen-only-on-new-firing"))
        if fired_again and self._s.status is S.RESOLVED:
            self._s.status = next_status(self._s.status, Action.REOPEN, self._s.id)
            self._s.resolved_at = None
            self._s.resolution_summary = None
            self._publish()
            self._record("reopened", "reopened: an alert is firing again")
        if msg.acknowledged_by:
            self._on_source_acknowledged(msg.acknowledged_by)
        if msg.all_resolved and self._all_alerts_resolved():
            self._on_all_alerts_resolved(msg.auto_resolve)
        if self._s.runs and (msg.all_resolved or fired_again):
            status = "resolved" if self._all_alerts_resolved() else "firing"
            self._tell_runs(AlertStatusChanged(status=status))

    def _on_source_acknowledged(self, source: str) -> None:
        # Someone acknowledged at the alert's source: the response is owned.
        if self._s.status is not S.DECLARED:
            self._record("alerts_acknowledged", f"alerts acknowledged at {source}")
            return
        self._s.status = next_status(self._s.status, Action.ACKNOWLEDGE, self._s.id)
        self._mark_acknowledged(source)
        self._tell_escalation(EscalationStop(reason="acknowledged", actor=source))
        self._record("acknowledged", f"acknowledged at {source}")

    def _record_alert(self, change: AlertChange) -> None:
        data = {"fingerprint": change.fingerprint, "labels": change.labels}
        if change.suppressed:
            self._record(
                "alert_suppressed",
                f"alert {change.alertname} {change.status.value}, suppressed "
                f"({change.suppressed}): {change.summary}",
                data=data,
            )
        elif change.status is AlertStatus.FIRING:
            self._record(
                "alert_firing", f"alert {change.alertname} firing: {change.summary}", data=data
            )
        else:
            self._record("alert_resolved", f"alert {change.alertname} resolved", data=data)

    def _all_alerts_resolved(self) -> bool:
        return all(c.status is AlertStatus.RESOLVED for c in self._s.alerts.values())

    def _on_all_alerts_resolved(self, policy: bool | None) -> None:
        if not is_open(self._s.status):
            self._record("alerts_resolved", "all alerts resolved")
            return
        severity = self._s.severity
        resolve = policy if policy is not None else severity in AUTO_RESOLVE_SEVERITIES
        if not resolve:
            why = (
                "the route turns auto-resolve off"
                if policy is False
                else f"{severity.value} incidents are resolved by a person"
            )
            self._record("alerts_resolved", f"all alerts resolved; still open: {why}")
            return
        self._s.status = next_status(self._s.status, Action.RESOLVE, self._s.id)
        now = workflow.now()
        self._s.resolved_at = now
        self._s.mitigated_at = self._s.mitigated_at or now
        self._s.resolution_summary = "all alerts resolved"
        self._publish()
        self._tell_escalation(EscalationStop(reason="resolved", actor=None))
        self._record("resolved", "resolved automatically: all alerts resolved")

    # --- helpers -----------------------------------------------------------------------------

    def _record(
        self,
        kind: str,
        text: str,
        *,
        actor: str | None = None,
        data: dict[str, Any] | None = None,
        mirror: bool = True,
    ) -> TimelineEntry:
        entry = TimelineEntry(
            id=str(workflow.uuid4()),
            at=workflow.now(),
            kind=kind,
            actor=actor,
            text=text,
            data=data or {},
        )
        self._s.timeline.append(entry)
        self._facts_may_have_changed()
        comms = self._config.comms
        if mirror and comms is not None and kind in comms.mirror_kinds:
            item = MirrorItem(entry_id=entry.id, kind=kind, text=text)
            self._tell_comms(CommsNews(mirror=[item]))
        if not workflow.unsafe.is_replaying():
            workflow.logger.info("%s: %s", kind, text)
        return entry

    def _result(self, entry: TimelineEntry) -> UpdateResult:
        if not workflow.patched(UPDATE_RESULT_TAIL):
            return UpdateResult(entry=entry, state=self._s)
        tail = self._s.timeline[-UPDATE_RESULT_TIMELINE:]
        return UpdateResult(
            entry=entry,
            state=self._s.model_copy(update={"timeline": tail}),
            timeline_omitted=len(self._s.timeline) - len(tail),
        )

    def _next(self, action: Action) -> IncidentStatus:
        try:
            return next_status(self._s.status, action, self._s.id)
        except TransitionRefused as refused:
            raise _refuse(str(refused), INVALID_TRANSITION) from None

    def _require_user(self, handle: str) -> None:
        users = self._config.users
        # An empty directory means fireline runs without configured people: anyone may act.
        if users and handle not in users:
            raise _refuse(
                f"unknown user '{handle}': not in fireline's user directory", UNKNOWN_USER
            )

    def _require_not_closed(self) -> None:
        if self._s.status is S.CLOSED:
            raise _refuse(f"{self._s.id} is closed", INVALID_TRANSITION)

    def _mark_acknowledged(self, actor: str) -> bool:
        if self._s.acknowledged_at is not None:
            return False
        self._s.acknowledged_at = workflow.now()
        self._s.acknowledged_by = actor
        self._publish()
        return True

    def _set_role(self, role: Role, user: str | None, *, actor: str | None) -> TimelineEntry:
        who = actor or "fireline"
        previous_holder = self._s.roles.pop(role, None)
        if user is None:
            entry = self._record(
                "role_vacated",
                f"{who} vacated {role.value} (was {previous_holder})",
                actor=actor,
                data={"role": role.value, "previous": previous_holder},
            )
        else:
            # A person holds one role per incident: taking a new one gives up the old one.
            given_up = [r for r, holder in self._s.roles.items() if holder == user]
            for r in given_up:
                del self._s.roles[r]
            self._s.roles[role] = user
            text = f"{who} made {user} {role.value}"
            if previous_holder:
                text += f" (replacing {previous_holder})"
            if given_up:
                text += f"; {user} is no longer {given_up[0].value}"
            entry = self._record(
                "role_assigned",
                text,
                actor=actor,
                data={
                    "role": role.value,
                    "user": user,
                    "previous": previous_holder,
                    "gave_up": [r.value for r in given_up],
                },
            )
        self._publish()
        return entry

    def _close(self, *, actor: str | None, text: str) -> TimelineEntry:
        self._s.status = S.CLOSED
        self._s.closed_at = workflow.now()
        self._publish()
        return self._record("closed", text, actor=actor)

    def _publish(self) -> None:
        """Keep visibility's search attributes in step with the state."""
        if not self._running:
            return
        s = self._s
        team = self._config.service.owner_team if self._config.service else None
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.STATUS.value_set(s.status.value),
            sa.SEVERITY.value_set(s.severity.value),
            sa.SERVICE.value_set(s.service),
            sa.DECLARED_AT.value_set(s.declared_at),
            sa.COMMANDER.value_set(s.roles[Role.COMMANDER])
            if Role.COMMANDER in s.roles
            else sa.COMMANDER.value_unset(),
            sa.TEAM.value_set(team) if team else sa.TEAM.value_unset(),
            sa.ACKNOWLEDGED_AT.value_set(s.acknowledged_at)
            if s.acknowledged_at
            else sa.ACKNOWLEDGED_AT.value_unset(),
            sa.RESOLVED_AT.value_set(s.resolved_at)
            if s.resolved_at
            else sa.RESOLVED_AT.value_unset(),
            sa.MITIGATED_AT_EPOCH.value_set(int(s.mitigated_at.timestamp()))
            if s.mitigated_at
            else sa.MITIGATED_AT_EPOCH.value_unset(),
        ]
        workflow.upsert_search_attributes(updates)
        self._refresh_update_due()


def _rank(severity: Severity) -> int:
    """SEV1 → 1: a smaller rank is more severe."""
    return int(severity.value.removeprefix("SEV"))

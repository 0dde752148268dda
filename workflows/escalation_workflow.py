"""EscalationWorkflow: page level by level on durable timers until someone owns the incident.

A child of the incident (``escalation-<INC>``). Each level's targets are resolved at the
moment the level starts (who is on call *then*), each person is reached through their
notification rules, and the level's delay is a durable timer that an acknowledgement,
a resolution or an "escalate now" cuts short — atomically, because every one of them is a
signal to this single workflow. The grey areas other tools get wrong are decided here:

- an acknowledgement that arrives in the same instant as the level timer wins: the stop
  is checked before the next level is paged;
- every page carries a dedup key from (incident, level, attempt, user, contact), so a
  retried activity never pages twice;
- "if we notified, we resolve": on acknowledgement every page that was opened is
  acknowledged at its vendor, and on resolution resolved; the workflow lives until the
  incident resolves so it can do the latter.

Every page, failure, escalation step and closing goes to the incident's timeline as a
``paging_event`` signal. The signals go out in order from an outbox, without holding up the
next page or the next level's timer: a report is one server round trip and one incident
task, 90 ms idle and 600 ms under load (bench/RESULTS.md), that a person being paged should
not wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        ContactKind,
        Page,
        PageAction,
        PageResult,
        PageSeverity,
    )
    from workflows.contracts import (
        EscalateNow,
        EscalationInput,
        EscalationOutcome,
        EscalationStop,
        PagingEvent,
    )
    from workflows.escalation import (
        PagePlan,
        level_at,
        level_plans,
        low_urgency_wait,
        total_attempts,
    )
    from workflows.failures import activity_failure_reason

PAGE_TIMEOUT = timedelta(seconds=30)
# A page is retried for a few minutes (429s and 5xx honour Retry-After); a permanent vendor
# error is not retried and goes on the timeline at once.
PAGE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=["PermanentHttpError", "PermanentSmtpError", "ProviderNotConfigured"],
)
# Reports leave through the outbox instead of being awaited in line (see the module doc).
PAGE_BEFORE_REPORT = "page-before-report"
# Vendors whose pages stay open until told otherwise; email and console need no closing.
CLOSABLE = frozenset(
    {ContactKind.PAGERDUTY, ContactKind.OPSGENIE, ContactKind.SLACK, ContactKind.WEBHOOK}
)


@workflow.defn
class EscalationWorkflow:
    """Pages until acknowledged, then closes what it opened."""

    @workflow.init
    def __init__(self, inp: EscalationInput) -> None:
        self._in = inp
        self._stop: EscalationStop | None = None
        self._resolved: EscalationStop | None = None
        self._escalate_requests = 0
        self._opened: list[tuple[Page, PageResult]] = []
        self._sent = 0
        self._failed = 0
        self._outbox: list[PagingEvent] = []
        self._reporter: asyncio.Task[None] | None = None
        self._closing = False

    @workflow.run
    async def run(self, inp: EscalationInput) -> EscalationOutcome:
        """Walk the policy, then close the loop."""
        snapshot = inp.snapshot
        if workflow.patched(PAGE_BEFORE_REPORT):
            self._reporter = asyncio.create_task(self._deliver_reports())
        start_at = low_urgency_wait(snapshot, workflow.now())
        if start_at is not None:
            await self._report(
                "deferred", f"low urgency: paging starts at {start_at:%Y-%m-%d %H:%M %Z}"
            )
            await self._wait_until(start_at)
        total = total_attempts(snapshot.policy)
        attempt = 0
        while attempt < total and self._stop is None:
            level, pass_ = level_at(snapshot.policy, attempt)
            await self._page_level(level, pass_, attempt)
            if self._stop is not None:
                break
            await self._wait(self._stopped_or_escalated(), snapshot.policy.levels[level].delay)
            attempt += 1
            # Checked after the timer: an acknowledgement in the same instant wins.
            if self._stop is None and attempt < total:
                nxt, nxt_pass = level_at(snapshot.policy, attempt)
                await self._report(
                    "escalated",
                    f"no acknowledgement: escalating to level {nxt + 1}"
                    + (f" (pass {nxt_pass + 1})" if nxt_pass else ""),
                    level=nxt,
                    attempt=attempt,
                )
        exhausted = self._stop is None
        if exhausted:
            await self._report(
                "exhausted",
                f"escalation policy '{snapshot.policy.name}' exhausted after {total} "
                "level(s) with no acknowledgement; pages stay open",
            )
            await workflow.wait_condition(lambda: self._stop is not None)
        assert self._stop is not None
        stopped_by = self._stop.actor
        if self._stop.reason == "acknowledged":
            await self._close(PageAction.ACKNOWLEDGE, self._stop.actor)
            await workflow.wait_condition(lambda: self._resolved is not None)
        assert self._resolved is not None
        await self._close(PageAction.RESOLVE, self._resolved.actor)
        if self._reporter is not None:
            # Every report reaches the timeline before the escalation ends; a failed signal
            # fails the workflow here, as it did when reports were awaited in line.
            self._closing = True
            await self._reporter
        await workflow.wait_condition(workflow.all_handlers_finished)
        return EscalationOutcome(
            pages_sent=self._sent,
            pages_failed=self._failed,
            stopped_by=stopped_by,
            exhausted=exhausted,
        )

    # --- signals -------------------------------------------------------------------------

    @workflow.signal
    def stop(self, msg: EscalationStop) -> None:
        """Acknowledged or resolved: no more paging."""
        if self._stop is None:
            self._stop = msg
        if msg.reason == "resolved" and self._resolved is None:
            self._resolved = msg

    @workflow.signal
    def escalate_now(self, msg: EscalateNow) -> None:
        """Cut the current level's wait short."""
        self._escalate_requests += 1

    # --- paging --------------------------------------------------------------------------

    async def _page_level(self, level: int, pass_: int, attempt: int) -> None:
        started = workflow.now()
        resolution = level_plans(self._in.snapshot, level=level, pass_=pass_, at=started)
        for warning in resolution.warnings:
            await self._report("nobody_on_call", warning, level=level, attempt=attempt)
        by_offset: dict[timedelta, list[PagePlan]] = {}
        for plan in resolution.plans:
            by_offset.setdefault(plan.offset, []).append(plan)
        for offset in sorted(by_offset):
            await self._wait_until(started + offset)
            if self._stop is not None:
                return
            # Pages due at the same moment go out together, not one after another.
            await asyncio.gather(*(self._send(plan) for plan in by_offset[offset]))

    async def _send(self, plan: PagePlan) -> None:
        page = Page(
            dedup_key=self._page_key(plan),
            incident_id=self._in.snapshot.incident_id,
            title=self._in.title,
            summary=self._in.summary,
            severity=PageSeverity(self._in.severity.value),
            recipient=plan.user,
            contact=plan.contact,
            service=self._in.service,
            team=self._in.team,
        )
        try:
            result: PageResult = await workflow.execute_activity(
                "notify.send",
                page,
                result_type=PageResult,
                start_to_close_timeout=PAGE_TIMEOUT,
                retry_policy=PAGE_RETRY,
            )
        except ActivityError as err:
            self._failed += 1
            cause = activity_failure_reason(err)
            await self._report(
                "page_failed",
                f"paging {plan.user} via {plan.contact.kind.value} failed: {cause}",
                plan=plan,
            )
            return
        self._sent += 1
        self._opened.append((page, result))
        await self._report(
            "paged", f"paged {plan.user} via {plan.contact.kind.value}: {plan.via}", plan=plan
        )

    async def _close(self, action: PageAction, actor: str | None) -> None:
        closable = [(p, r) for p, r in self._opened if p.contact.kind in CLOSABLE]

        async def close_one(page: Page, result: PageResult) -> None:
            follow_up = page.model_copy(
                update={"action": action, "external_id": result.external_id, "actor": actor or ""}
            )
            try:
                await workflow.execute_activity(
                    "notify.send",
                    follow_up,
                    result_type=PageResult,
                    start_to_close_timeout=PAGE_TIMEOUT,
                    retry_policy=PAGE_RETRY,
                )
            except ActivityError as err:
                cause = activity_failure_reason(err)
                await self._report(
                    "page_failed",
                    f"could not {action.value} the {page.contact.kind.value} page to "
                    f"{page.recipient}: {cause}",
                    dedup_key=page.dedup_key,
                )
                return
            await self._report(
                "page_closed",
                f"{action.value}d the {page.contact.kind.value} page to {page.recipient}",
                dedup_key=page.dedup_key,
            )

        await asyncio.gather(*(close_one(p, r) for p, r in closable))

    # --- helpers -------------------------------------------------------------------------

    def _page_key(self, plan: PagePlan) -> str:
        # Incident numbers can repeat (a reset Temporal, a second installation sharing a
        # PagerDuty service or an inbox); a key that repeated would be swallowed by the
        # vendor's dedup. The first run id makes it this escalation's own, and it is stable
        # across activity retries and replays.
        salt = workflow.info().first_execution_run_id.replace("-", "")[:12]
        return f"{plan.dedup_key[:240]}-{salt}"

    async def _wait_until(self, moment: datetime) -> None:
        remaining = moment - workflow.now()
        if remaining > timedelta(0) and self._stop is None:
            await self._wait(lambda: self._stop is not None, remaining)

    @staticmethod
    async def _wait(condition: Callable[[], bool], timeout: timedelta) -> None:
        """A durable timer that the condition cuts short; either way, carry on."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(condition, timeout=timeout)

    def _stopped_or_escalated(self) -> Callable[[], bool]:
        asked = self._escalate_requests
        return lambda: self._stop is not None or self._escalate_requests > asked

    async def _report(
        self,
        kind: str,
        text: str,
        *,
        plan: PagePlan | None = None,
        level: int | None = None,
        attempt: int | None = None,
        dedup_key: str | None = None,
    ) -> None:
        event = PagingEvent(
            kind=kind,
            text=text,
            user=plan.user if plan else None,
            contact=plan.contact.kind.value if plan else None,
            level=plan.level if plan else level,
            attempt=plan.attempt if plan else attempt,
            dedup_key=plan.dedup_key if plan else dedup_key,
        )
        if self._reporter is not None:
            self._outbox.append(event)
            return
        await self._signal_incident(event)

    async def _deliver_reports(self) -> None:
        """Send the outbox's reports one at a time, in the order they were made."""
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox) or self._closing)
            if not self._outbox:
                return
            try:
                await self._signal_incident(self._outbox[0])
            except FailureError as err:
                # The incident has completed (closed right after resolving) and can hear no
                # more: its last words were said. Failing here would fail the escalation and
                # leave its other pages' closing unreported (found by make chaos).
                workflow.logger.warning("report not delivered to the incident: %s", err)
            self._outbox.pop(0)

    async def _signal_incident(self, event: PagingEvent) -> None:
        incident = workflow.get_external_workflow_handle(self._in.incident_workflow_id)
        await incident.signal("paging_event", event)

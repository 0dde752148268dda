"""ActionItemWorkflow: one improvement from a postmortem, tracked until it is done.

A child of the postmortem (``action-item-<INC>-A<n>``). Durable timers remind the owner
before the due date (``policy.before``), at the due date and every ``overdue_every`` after
it, and once the item has been overdue for ``escalate_after`` tell the owner's manager (or
the incident's commander) — once per owner. People act through Updates: done, drop,
reassign (reminders start over for the new owner) and snooze (reminders wait; the due date
stays). Every change is signalled to the postmortem so its list stays current.

The schedule is a pure function (:func:`next_item_reminder`) of the item's state, so the
tests can check it without a server and replays always plan the same timers. Reminders go
through the paging activity ``notify.send`` at low urgency; their wording is about the
work, never about whose fault a delay is.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import CloseTicket, TicketRef, TicketRequest
    from workflows.contracts import (
        ActionItemChanged,
        ActionItemEvent,
        ActionItemInput,
        ActionItemState,
        CompleteActionItem,
        ReassignActionItem,
        ReminderPolicy,
        ReminderSent,
        SnoozeActionItem,
    )
    from workflows.failures import activity_failure_reason
    from workflows.postmortem import (
        INVALID_REQUEST,
        INVALID_TRANSITION,
        UNKNOWN_USER,
        person,
        refuse,
        salt,
        send_reminder,
    )

# How far ahead a snooze may reach: long enough for a quarter's planning, short enough that
# an item is never quietly parked forever.
MAX_SNOOZE = timedelta(days=90)
TRACKER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=10,
    non_retryable_error_types=["PermanentHttpError", "TrackerNotConfigured"],
)


@dataclass(frozen=True)
class PlannedItemReminder:
    """The next reminder of an action item."""

    at: datetime
    key: str
    # assigned, due_soon, overdue (to the owner) or escalation (to the manager or commander).
    kind: str


def next_item_reminder(s: ActionItemState, policy: ReminderPolicy) -> PlannedItemReminder | None:
    """When the next reminder goes out, and which (pure; None once the item is closed)."""
    if s.status != "open":
        return None
    # Keys are per assignment: a new owner hears the whole sequence afresh.
    epoch = s.assignment
    sent = {r.key for r in s.reminders}
    floor = s.snoozed_until
    candidates: list[PlannedItemReminder] = []

    def held(at: datetime) -> datetime:
        return max(at, floor) if floor is not None else at

    # The owner hears at once that the item is theirs, before any reminder.
    assigned = f"assigned@{epoch}"
    if policy.notify_on_assign and assigned not in sent:
        return PlannedItemReminder(at=s.assigned_at, key=assigned, kind="assigned")

    for offset in sorted(policy.before, reverse=True):
        at = held(s.due_at - offset)
        key = f"before-{int(offset.total_seconds())}@{epoch}"
        # Moments before the assignment are skipped (no burst of stale reminders), and a
        # snooze past the due date leaves the overdue reminders to speak.
        if s.due_at - offset > s.assigned_at and at < s.due_at and key not in sent:
            candidates.append(PlannedItemReminder(at=at, key=key, kind="due_soon"))
            break
    overdue = [r for r in s.reminders if r.kind == "overdue" and r.key.endswith(f"@{epoch}")]
    at = s.due_at + len(overdue) * policy.overdue_every
    if overdue:
        # After a snooze, the sequence goes on from the last reminder, not all at once.
        at = max(at, overdue[-1].at + policy.overdue_every)
    candidates.append(
        PlannedItemReminder(at=held(at), key=f"overdue-{len(overdue)}@{epoch}", kind="overdue")
    )
    if not s.escalated:
        at = max(s.due_at, s.assigned_at) + policy.escalate_after
        candidates.append(
            PlannedItemReminder(at=held(at), key=f"escalation@{epoch}", kind="escalation")
        )
    order = {"due_soon": 0, "overdue": 1, "escalation": 2}
    return min(candidates, key=lambda c: (c.at, order[c.kind]))


@workflow.defn
class ActionItemWorkflow:
    """One action item, from creation to done or dropped."""

    @workflow.init
    def __init__(self, inp: ActionItemInput) -> None:
        self._in = inp
        now = workflow.now()
        self._s = ActionItemState(
            id=inp.id,
            postmortem_id=inp.incident_id,
            incident_id=inp.incident_id,
            title=inp.title,
            owner=inp.owner,
            priority=inp.priority,
            kind=inp.kind,
            due_at=inp.due_at,
            link=inp.link,
            created_at=now,
            created_by=inp.created_by,
            assigned_at=now,
        )
        # Bumped by every change; the postmortem is told when it moved past ``_told``.
        self._version = 0
        self._event(inp.created_by, f"{inp.created_by} created the item for {inp.owner}")
        self._told = self._version

    @workflow.run
    async def run(self, inp: ActionItemInput) -> ActionItemState:
        """Remind until the item is closed; keep the postmortem (and the tracker) told."""
        if inp.tracker:
            await self._open_ticket(inp.tracker)
        while self._s.status == "open":
            await self._tell_postmortem()
            await self._remind_or_wait()
        if inp.tracker and self._s.ticket_id:
            await self._close_ticket(inp.tracker, self._s.ticket_id)
        await self._tell_postmortem()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._s

    async def _remind_or_wait(self) -> None:
        version = self._version
        plan = next_item_reminder(self._s, self._in.policy)
        if plan is None:
            return
        remaining = plan.at - workflow.now()
        if remaining > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._version != version, timeout=remaining)
            if self._version != version:
                return
        await self._send(plan)

    async def _send(self, plan: PlannedItemReminder) -> None:
        s = self._s
        due = f"{s.due_at.astimezone(UTC):%Y-%m-%d %H:%M UTC}"
        item = f"action item {s.id} ({s.kind.value}, {s.priority.value}) '{s.title}'"
        if plan.kind == "escalation":
            to = self._escalation_target()
            late = workflow.now() - s.due_at
            text = (
                f"{item} from the postmortem of {s.incident_id}, owned by {s.owner}, has been "
                f"open {late.days}d past its due date ({due}). Could you help find time for it, "
                "a new owner, or a new date?"
            )
            title = f"Action item {s.id} is overdue"
            s.escalated = True
        else:
            to = s.owner
            if plan.kind == "assigned":
                text = (
                    f"{item} from the postmortem of {s.incident_id} is yours, due {due}. "
                    "It is one of the improvements the review asked for."
                )
                title = f"Action item {s.id} is yours"
            elif plan.kind == "overdue":
                text = f"{item} from the postmortem of {s.incident_id} was due {due}."
                title = f"Action item {s.id} is overdue"
            else:
                text = f"{item} from the postmortem of {s.incident_id} is due {due}."
                title = f"Action item {s.id} is due soon"
            text += " Mark it done, snooze it, or hand it over: fireline actions --help."
        if to is None:
            ok, detail = False, "no manager and no commander to escalate to"
        else:
            ok, detail = await send_reminder(
                dedup_key=f"ai-{s.id}-{plan.key}-{salt()}",
                incident_id=s.incident_id,
                severity=self._in.severity.value,
                title=title,
                text=text,
                to=person(self._in.people, to),
                details={"action_item": s.id, "due": s.due_at.isoformat(), "kind": plan.kind},
            )
        s.reminders.append(
            ReminderSent(
                at=workflow.now(),
                key=plan.key,
                kind=plan.kind,
                to=to or "-",
                ok=ok,
                detail=detail,
            )
        )
        if plan.kind == "escalation":
            self._event(None, f"overdue: escalated to {to or 'nobody'}")
            self._version += 1

    async def _open_ticket(self, tracker: str) -> None:
        s = self._s
        body = (
            f"Action item from the blameless postmortem of {s.incident_id}.\n\n"
            f"- kind: {s.kind.value}\n- priority: {s.priority.value}\n"
            f"- owner: {s.owner}\n- due: {s.due_at.astimezone(UTC):%Y-%m-%d %H:%M UTC}"
        )
        try:
            ref: TicketRef = await workflow.execute_activity(
                "tracker.open",
                TicketRequest(
                    key=s.id,
                    tracker=tracker,
                    title=s.title,
                    body=body,
                    labels=[s.kind.value, s.priority.value],
                ),
                result_type=TicketRef,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=TRACKER_RETRY,
            )
        except ActivityError as err:
            # The item is tracked here either way; the tracker is a convenience.
            s.ticket_error = activity_failure_reason(err)
            self._event(None, f"could not open a {tracker} ticket: {s.ticket_error}")
            return
        s.ticket_id, s.ticket_url = ref.external_id, ref.url or None
        s.link = s.link or s.ticket_url
        self._event(None, f"{tracker} ticket {ref.external_id} opened: {ref.url}")

    async def _close_ticket(self, tracker: str, ticket_id: str) -> None:
        s = self._s
        try:
            await workflow.execute_activity(
                "tracker.close",
                CloseTicket(
                    key=s.id,
                    tracker=tracker,
                    external_id=ticket_id,
                    reason="completed" if s.status == "done" else "not_planned",
                    comment=s.events[-1].text if s.events else "",
                ),
                result_type=TicketRef,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=TRACKER_RETRY,
            )
        except ActivityError as err:
            s.ticket_error = activity_failure_reason(err)
            self._event(None, f"could not close {tracker} ticket {ticket_id}: {s.ticket_error}")
            return
        self._event(None, f"{tracker} ticket {ticket_id} closed")

    def _escalation_target(self) -> str | None:
        owner = self._in.people.get(self._s.owner)
        manager = owner.manager if owner else None
        if manager and manager != self._s.owner:
            return manager
        return self._in.commander

    async def _tell_postmortem(self) -> None:
        if self._told == self._version:
            return
        self._told = self._version
        parent = workflow.get_external_workflow_handle(self._in.postmortem_workflow_id)
        try:
            await parent.signal(
                "action_item_changed",
                ActionItemChanged(item=self._s.summary(workflow.info().workflow_id)),
            )
        except ApplicationError as exc:
            # The postmortem ended (or was terminated): the item is tracked on its own.
            workflow.logger.info("postmortem did not take the change: %s", exc)

    # --- queries -------------------------------------------------------------------------

    @workflow.query
    def state(self) -> ActionItemState:
        """The item as it is now."""
        return self._s

    # --- updates -------------------------------------------------------------------------

    @workflow.update
    def done(self, cmd: CompleteActionItem) -> ActionItemState:
        """The work is done."""
        self._close("done", cmd.actor, f"{cmd.actor} marked it done" + _note(cmd.note))
        return self._s

    @done.validator
    def _validate_done(self, cmd: CompleteActionItem) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_open()

    @workflow.update
    def drop(self, cmd: CompleteActionItem) -> ActionItemState:
        """The item will not be done (superseded, no longer relevant); the reason is kept."""
        self._close("dropped", cmd.actor, f"{cmd.actor} dropped it: {cmd.note}")
        return self._s

    @drop.validator
    def _validate_drop(self, cmd: CompleteActionItem) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_open()
        if not cmd.note.strip():
            raise refuse("note: say why the item is dropped", INVALID_REQUEST)

    @workflow.update
    def reassign(self, cmd: ReassignActionItem) -> ActionItemState:
        """A new owner takes the item; reminders start over for them."""
        previous = self._s.owner
        self._s.owner = cmd.owner
        self._s.assigned_at = workflow.now()
        self._s.assignment += 1
        self._s.escalated = False
        self._s.snoozed_until = None
        self._event(
            cmd.actor, f"{cmd.actor} handed it from {previous} to {cmd.owner}" + _note(cmd.note)
        )
        return self._s

    @reassign.validator
    def _validate_reassign(self, cmd: ReassignActionItem) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_open()
        self._require_user(cmd.owner, "owner")
        if cmd.owner == self._s.owner:
            raise refuse(f"owner: {cmd.owner} already owns {self._s.id}", INVALID_REQUEST)

    @workflow.update
    def snooze(self, cmd: SnoozeActionItem) -> ActionItemState:
        """Hold reminders until ``until``; the due date does not move."""
        self._s.snoozed_until = cmd.until
        self._event(
            cmd.actor,
            f"{cmd.actor} snoozed reminders until {cmd.until.astimezone(UTC):%Y-%m-%d %H:%M UTC}"
            + _note(cmd.note),
        )
        return self._s

    @snooze.validator
    def _validate_snooze(self, cmd: SnoozeActionItem) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_open()
        now = workflow.now()
        if cmd.until.tzinfo is None:
            raise refuse("until: give a time zone (e.g. 2026-12-01T09:00:00Z)", INVALID_REQUEST)
        if cmd.until <= now:
            raise refuse(f"until: {cmd.until.isoformat()} is in the past", INVALID_REQUEST)
        if cmd.until - now > MAX_SNOOZE:
            raise refuse(
                f"until: at most {MAX_SNOOZE.days} days ahead; reassign or drop the item instead",
                INVALID_REQUEST,
            )

    # --- helpers ---------------------------------------------------------------------------

    def _close(self, status: str, actor: str, text: str) -> None:
        self._s.status = "done" if status == "done" else "dropped"
        self._s.closed_at = workflow.now()
        self._s.closed_by = actor
        self._event(actor, text)

    def _event(self, actor: str | None, text: str) -> None:
        self._s.events.append(ActionItemEvent(at=workflow.now(), actor=actor, text=text))
        self._version += 1

    def _require_user(self, handle: str, field: str) -> None:
        people = self._in.people
        if people and handle not in people:
            raise refuse(
                f"{field}: unknown user '{handle}': not in fireline's user directory",
                UNKNOWN_USER,
            )

    def _require_open(self) -> None:
        if self._s.status != "open":
            raise refuse(f"{self._s.id} is {self._s.status}", INVALID_TRANSITION)


def _note(note: str) -> str:
    return f": {note}" if note.strip() else ""

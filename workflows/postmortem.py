"""PostmortemWorkflow: the blameless review of one incident, from draft to published.

Started by the incident on its first resolution (``postmortem-<INC>``, parent close policy
ABANDON, so it outlives the incident). It gathers the incident's record through the
``postmortem.gather`` activity, drafts the template from it (:mod:`workflows.postmortem_draft`,
pure), and then waits for people: section edits and review steps are Updates whose
validators refuse what is not allowed before anything is written to history —

    draft ──submit──▶ in review ──publish──▶ published
      ▲                  │
      └─request changes──┘

Publishing is refused while a required section is empty, and the refusal names every one.
Durable timers remind the author (while a draft) or the reviewers (while in review) before
the due date and repeatedly once it has passed, through the paging activity
``notify.send`` at low urgency. Action items are ActionItemWorkflow children; the
postmortem ends once it is published and every action item is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.contracts import (
        ContactKind,
        ContactMethod,
        ExportRequest,
        ExportResult,
        GatheredRecord,
        GatherRequest,
        Page,
        PageResult,
        PageSeverity,
        Urgency,
    )
    from workflows.contracts import (
        ActionItemChanged,
        ActionItemInput,
        ActionItemSummary,
        AddActionItem,
        EditSection,
        ExportPostmortem,
        IncidentRecord,
        IncidentState,
        Person,
        PostmortemInput,
        PostmortemOutcome,
        PostmortemResult,
        PostmortemState,
        PostmortemStatus,
        ReminderSent,
        ReviewAction,
        ReviewEvent,
        RunbookRunState,
    )
    from workflows.failures import activity_failure_reason
    from workflows.postmortem_draft import (
        TITLES,
        blameless_warnings,
        export_basename,
        initial_state,
        render_markdown,
        with_draft,
    )

# ApplicationError types, as the incident's (the API maps them to HTTP statuses).
UNKNOWN_USER = "UnknownUser"
INVALID_TRANSITION = "InvalidTransition"
INVALID_REQUEST = "InvalidRequest"
NOT_ALLOWED = "NotAllowed"

MAX_SECTION_CHARS = 50_000
MAX_TITLE_CHARS = 300

GATHER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=["IncidentNotFound"],
)
# Short: the export Update waits for it, and the API gives an Update 15 s.
EXPORT_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_attempts=3)
REMINDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=["PermanentHttpError", "PermanentSmtpError", "ProviderNotConfigured"],
)
S = PostmortemStatus


def refuse(message: str, error_type: str) -> ApplicationError:
    """A validator's refusal: the Update fails with this reason, nothing is recorded."""
    return ApplicationError(message, type=error_type, non_retryable=True)


def person(people: dict[str, Person], handle: str) -> Person:
    """``handle``'s directory entry; someone not in it is reminded on the console."""
    return people.get(handle) or Person(
        handle=handle, contact=ContactMethod(kind=ContactKind.CONSOLE)
    )


async def send_reminder(
    *,
    dedup_key: str,
    incident_id: str,
    severity: str,
    title: str,
    text: str,
    to: Person,
    details: dict[str, str],
) -> tuple[bool, str]:
    """One low-urgency reminder through ``notify.send``; (delivered, detail), never raises."""
    page = Page(
        dedup_key=dedup_key[:255],
        incident_id=incident_id,
        title=title,
        summary=text,
        severity=PageSeverity(severity),
        urgency=Urgency.LOW,
        informational=True,
        recipient=to.handle,
        contact=to.contact,
        details=details,
    )
    try:
        result: PageResult = await workflow.execute_activity(
            "notify.send",
            page,
            result_type=PageResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=REMINDER_RETRY,
        )
    except ActivityError as err:
        return False, activity_failure_reason(err)
    return result.delivered, result.detail


def salt() -> str:
    """Part of every reminder's dedup key: postmortem numbers can repeat across installs."""
    return workflow.info().first_execution_run_id.replace("-", "")[:12]


@dataclass(frozen=True)
class PlannedReminder:
    """The next reminder: when, its idempotency key, and whom it goes to."""

    at: datetime
    key: str
    kind: str
    to: list[str]


def next_reminder(state: PostmortemState, inp: PostmortemInput) -> PlannedReminder | None:
    """The postmortem's next reminder (pure): before the due date, then while overdue."""
    if state.status is S.PUBLISHED:
        return None
    if state.status is S.IN_REVIEW:
        to = [r for r in state.reviewers if r not in state.approvals] or (
            [state.author] if state.author else []
        )
    else:
        to = [state.author] if state.author else list(state.reviewers)
    if not to:
        return None
    sent = {r.key for r in state.reminders}
    for offset in sorted(inp.settings.remind_before, reverse=True):
        at = state.due_at - offset
        key = f"due-soon-{int(offset.total_seconds())}-{state.status.value}"
        if at > state.created_at and key not in sent:
            return PlannedReminder(at=at, key=key, kind="due_soon", to=to)
    overdue = len({r.key for r in state.reminders if r.kind == "overdue"})
    every = inp.settings.overdue_every
    return PlannedReminder(
        at=state.due_at + overdue * every, key=f"overdue-{overdue}", kind="overdue", to=to
    )


@workflow.defn
class PostmortemWorkflow:
    """The review of one incident."""

    @workflow.init
    def __init__(self, inp: PostmortemInput) -> None:
        self._in = inp
        self._s = initial_state(inp, workflow.now())
        self._people = inp.settings.people
        # Bumped by every change, so the reminder timer is re-planned.
        self._version = 0
        self._refresher: asyncio.Task[None] | None = None

    @workflow.run
    async def run(self, inp: PostmortemInput) -> PostmortemOutcome:
        """Draft, wait for the review with reminders, then wait for the action items."""
        await self._gather()
        await self._export()
        if inp.refresh_after is not None:
            # Deterministic: the workflow's event loop schedules the task.
            self._refresher = asyncio.create_task(self._refresh_later(inp.refresh_after))
        while self._s.status is not S.PUBLISHED:
            await self._remind_or_wait()
        await workflow.wait_condition(lambda: all(i.status != "open" for i in self._s.action_items))
        await workflow.wait_condition(workflow.all_handlers_finished)
        return PostmortemOutcome(
            id=self._s.id,
            status=self._s.status,
            published_at=self._s.published_at,
            action_items=len(self._s.action_items),
        )

    # --- drafting ------------------------------------------------------------------------

    async def _gather(self) -> None:
        try:
            gathered: GatheredRecord = await workflow.execute_activity(
                "postmortem.gather",
                GatherRequest(incident_workflow_id=self._in.incident_workflow_id),
                result_type=GatheredRecord,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=GATHER_RETRY,
            )
            record = IncidentRecord(
                incident=IncidentState.model_validate(gathered.incident),
                runs=[RunbookRunState.model_validate(r) for r in gathered.runs],
                missing_runs=gathered.missing_runs,
            )
        except ActivityError as err:
            # Without the record people still write the postmortem; the draft says why.
            self._s.gather_error = activity_failure_reason(err)
            if self._s.status is S.GATHERING:
                self._s.status = S.DRAFT
            self._changed()
            return
        self._s = with_draft(self._s, record, workflow.now())
        self._s.gather_error = ""
        self._changed()

    async def _refresh_later(self, after: timedelta) -> None:
        await workflow.sleep(after)
        if self._s.status is not S.PUBLISHED:
            await self._gather()
            await self._export()

    async def _export(self) -> None:
        directory = self._in.settings.export_dir
        if not directory:
            return
        markdown = render_markdown(self._s)
        try:
            result: ExportResult = await workflow.execute_activity(
                "postmortem.export",
                ExportRequest(
                    directory=directory,
                    basename=export_basename(self._s),
                    markdown=markdown,
                    json_text=self._s.model_dump_json(indent=2) + "\n",
                ),
                result_type=ExportResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=EXPORT_RETRY,
            )
        except ActivityError as err:
            self._s.export_error = activity_failure_reason(err)
            return
        self._s.exported = result.paths
        self._s.export_error = ""

    # --- reminders -----------------------------------------------------------------------

    async def _remind_or_wait(self) -> None:
        version = self._version
        plan = next_reminder(self._s, self._in)
        if plan is None:
            await workflow.wait_condition(lambda: self._version != version)
            return
        remaining = plan.at - workflow.now()
        if remaining > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(lambda: self._version != version, timeout=remaining)
            if self._version != version:
                return
        await asyncio.gather(*(self._remind(plan, handle) for handle in plan.to))

    async def _remind(self, plan: PlannedReminder, handle: str) -> None:
        s = self._s
        due = f"{s.due_at.astimezone(UTC):%Y-%m-%d}"
        missing = ", ".join(TITLES[k].lower() for k in s.empty_required()) or "none"
        if s.status is S.IN_REVIEW:
            text = (
                f"The postmortem of {s.incident_id} ({s.title}) is waiting for your review; "
                f"it is due {due}."
            )
        else:
            text = (
                f"The postmortem of {s.incident_id} ({s.title}) is due {due}. Sections still "
                f"to write: {missing}. It reviews how our systems and decisions played out, "
                "not who caused the incident."
            )
        if plan.kind == "overdue":
            text = "Overdue: " + text
        ok, detail = await send_reminder(
            dedup_key=f"pm-{s.incident_id}-{plan.key}-{handle}-{salt()}",
            incident_id=s.incident_id,
            severity=s.severity.value,
            title=f"Postmortem {s.incident_id}: "
            + ("overdue" if plan.kind == "overdue" else f"due {due}"),
            text=text,
            to=person(self._people, handle),
            details={"postmortem": s.id, "due": s.due_at.isoformat(), "status": s.status.value},
        )
        s.reminders.append(
            ReminderSent(
                at=workflow.now(), key=plan.key, kind=plan.kind, to=handle, ok=ok, detail=detail
            )
        )

    # --- queries -------------------------------------------------------------------------

    @workflow.query
    def state(self) -> PostmortemState:
        """The postmortem as it is now."""
        return self._s

    # --- sections ------------------------------------------------------------------------

    @workflow.update
    def edit_section(self, cmd: EditSection) -> PostmortemResult:
        """Replace a section's text; warnings point out wording that drifts towards blame."""
        section = self._s.section(cmd.section)
        assert section is not None  # every key exists from the start
        section.text = cmd.text
        section.drafted = False
        section.edited_by = cmd.actor
        section.edited_at = workflow.now()
        self._changed()
        return PostmortemResult(state=self._s, warnings=blameless_warnings(cmd.text))

    @edit_section.validator
    def _validate_edit_section(self, cmd: EditSection) -> None:
        self._require_user(cmd.actor, "actor")
        if self._s.status is S.PUBLISHED:
            raise refuse(
                f"the postmortem of {self._s.incident_id} is published", INVALID_TRANSITION
            )
        if len(cmd.text) > MAX_SECTION_CHARS:
            raise refuse(
                f"text: {len(cmd.text)} characters; a section holds at most {MAX_SECTION_CHARS}",
                INVALID_REQUEST,
            )

    # --- review --------------------------------------------------------------------------

    @workflow.update
    async def submit(self, cmd: ReviewAction) -> PostmortemResult:
        """Draft → in review: the reviewers are asked to read it."""
        self._s.status = S.IN_REVIEW
        self._s.approvals = []
        self._review(cmd, "submitted for review")
        await self._export()
        return PostmortemResult(state=self._s)

    @submit.validator
    def _validate_submit(self, cmd: ReviewAction) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_status(S.DRAFT, "submit it for review")

    @workflow.update
    def approve(self, cmd: ReviewAction) -> PostmortemResult:
        """A reviewer signs off on the postmortem under review."""
        self._s.approvals.append(cmd.actor)
        self._review(cmd, "approved")
        return PostmortemResult(state=self._s)

    @approve.validator
    def _validate_approve(self, cmd: ReviewAction) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_status(S.IN_REVIEW, "approve it")
        self._require_reviewer(cmd.actor, "approve")
        if cmd.actor in self._s.approvals:
            raise refuse(f"{cmd.actor} has already approved", INVALID_REQUEST)

    @workflow.update
    async def request_changes(self, cmd: ReviewAction) -> PostmortemResult:
        """In review → draft, with what needs to change."""
        self._s.status = S.DRAFT
        self._s.approvals = []
        self._review(cmd, "requested changes")
        await self._export()
        return PostmortemResult(state=self._s)

    @request_changes.validator
    def _validate_request_changes(self, cmd: ReviewAction) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_status(S.IN_REVIEW, "request changes")
        self._require_reviewer(cmd.actor, "request changes")
        if not cmd.comment.strip():
            raise refuse("comment: say what needs to change", INVALID_REQUEST)

    @workflow.update
    async def publish(self, cmd: ReviewAction) -> PostmortemResult:
        """In review → published: final, exported, read-only."""
        self._s.status = S.PUBLISHED
        self._s.published_at = workflow.now()
        self._s.published_by = cmd.actor
        self._review(cmd, "published")
        await self._export()
        return PostmortemResult(state=self._s)

    @publish.validator
    def _validate_publish(self, cmd: ReviewAction) -> None:
        self._require_user(cmd.actor, "actor")
        # Checked first: whatever the state, the answer names what is still to write.
        empty = self._s.empty_required()
        if empty:
            names = ", ".join(f"{k.value} ({TITLES[k]})" for k in empty)
            raise refuse(
                f"cannot publish the postmortem of {self._s.incident_id}: required sections "
                f"are empty: {names}",
                INVALID_REQUEST,
            )
        self._require_status(S.IN_REVIEW, "publish it")
        self._require_reviewer(cmd.actor, "publish")

    @workflow.update
    async def refresh(self, cmd: ReviewAction) -> PostmortemResult:
        """Gather the incident's record again; edited sections keep their text."""
        await self._gather()
        if self._s.gather_error:
            raise ApplicationError(self._s.gather_error, type="GatherFailed", non_retryable=True)
        await self._export()
        return PostmortemResult(state=self._s)

    @refresh.validator
    def _validate_refresh(self, cmd: ReviewAction) -> None:
        self._require_user(cmd.actor, "actor")
        if self._s.status in (S.GATHERING, S.PUBLISHED):
            raise refuse(
                f"cannot refresh: the postmortem of {self._s.incident_id} is "
                f"{self._s.status.value.replace('_', ' ')}",
                INVALID_TRANSITION,
            )

    @workflow.update
    async def export(self, cmd: ExportPostmortem) -> PostmortemResult:
        """Write the Markdown and JSON files now."""
        await self._export()
        if self._s.export_error:
            raise ApplicationError(self._s.export_error, type="ExportFailed", non_retryable=True)
        return PostmortemResult(state=self._s)

    @export.validator
    def _validate_export(self, cmd: ExportPostmortem) -> None:
        self._require_user(cmd.actor, "actor")
        if not self._in.settings.export_dir:
            raise refuse(
                "no export directory is configured (postmortems.export_dir in fireline.yaml)",
                INVALID_REQUEST,
            )

    # --- action items ---------------------------------------------------------------------

    @workflow.update
    async def add_action_item(self, cmd: AddActionItem) -> ActionItemSummary:
        """Track an improvement to completion as a child ActionItemWorkflow."""
        item_id = f"{self._s.incident_id}-A{len(self._s.action_items) + 1}"
        summary = ActionItemSummary(
            id=item_id,
            workflow_id=f"action-item-{item_id}",
            title=cmd.title.strip(),
            owner=cmd.owner,
            priority=cmd.priority,
            kind=cmd.kind,
            due_at=cmd.due_at,
            link=cmd.link,
        )
        # Reserved before the await, so a second item in the meantime gets the next id.
        self._s.action_items.append(summary)
        await workflow.start_child_workflow(
            "ActionItemWorkflow",
            ActionItemInput(
                id=item_id,
                postmortem_workflow_id=workflow.info().workflow_id,
                incident_id=self._s.incident_id,
                severity=self._s.severity,
                title=summary.title,
                owner=cmd.owner,
                priority=cmd.priority,
                kind=cmd.kind,
                due_at=cmd.due_at,
                link=cmd.link,
                created_by=cmd.actor,
                commander=self._in.commander,
                policy=self._in.settings.action_items,
                people=self._people,
                tracker=self._in.settings.tracker,
            ),
            id=summary.workflow_id,
            # Tracked to completion even if the postmortem is terminated.
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        self._changed()
        return summary

    @add_action_item.validator
    def _validate_add_action_item(self, cmd: AddActionItem) -> None:
        self._require_user(cmd.actor, "actor")
        self._require_user(cmd.owner, "owner")
        validate_item_fields(cmd.title, cmd.due_at, cmd.link, workflow.now())

    @workflow.signal
    def action_item_changed(self, msg: ActionItemChanged) -> None:
        """An action item was done, dropped, reassigned, snoozed or escalated."""
        for i, item in enumerate(self._s.action_items):
            if item.id == msg.item.id:
                self._s.action_items[i] = msg.item
        self._changed()

    # --- helpers ---------------------------------------------------------------------------

    def _changed(self) -> None:
        self._version += 1

    def _review(self, cmd: ReviewAction, action: str) -> None:
        self._s.review.append(
            ReviewEvent(at=workflow.now(), actor=cmd.actor, action=action, comment=cmd.comment)
        )
        self._changed()

    def _require_user(self, handle: str, field: str) -> None:
        # An empty directory means fireline runs without configured people: anyone may act.
        if self._people and handle not in self._people:
            raise refuse(
                f"{field}: unknown user '{handle}': not in fireline's user directory",
                UNKNOWN_USER,
            )

    def _require_status(self, wanted: PostmortemStatus, to_do: str) -> None:
        status = self._s.status
        if status is wanted:
            return
        where = {
            S.GATHERING: "still being drafted from the incident's record",
            S.DRAFT: "a draft: submit it for review first",
            S.IN_REVIEW: "in review",
            S.PUBLISHED: "published",
        }[status]
        raise refuse(
            f"cannot {to_do}: the postmortem of {self._s.incident_id} is {where}",
            INVALID_TRANSITION,
        )

    def _require_reviewer(self, actor: str, to_do: str) -> None:
        reviewers = self._s.reviewers
        if reviewers and actor not in reviewers:
            raise refuse(
                f"only the reviewers ({', '.join(reviewers)}) may {to_do} this postmortem",
                NOT_ALLOWED,
            )


def validate_item_fields(title: str, due_at: datetime, link: str | None, now: datetime) -> None:
    """Refuse an action item's bad fields, naming the field (shared with the item's Updates)."""
    if not title.strip():
        raise refuse("title: say what will be done", INVALID_REQUEST)
    if len(title) > MAX_TITLE_CHARS:
        raise refuse(f"title: at most {MAX_TITLE_CHARS} characters", INVALID_REQUEST)
    if due_at.tzinfo is None:
        raise refuse("due_at: give a time zone (e.g. 2026-12-01T17:00:00Z)", INVALID_REQUEST)
    if due_at <= now:
        raise refuse(
            f"due_at: {due_at.isoformat()} is in the past (now {now.isoformat()})",
            INVALID_REQUEST,
        )
    if link is not None and not link.startswith(("https://", "http://")):
        raise refuse(f"link: '{link}' is not an http(s) URL", INVALID_REQUEST)

"""Postmortems and action items on top of Temporal, shared by the HTTP API and tools.

A postmortem is the workflow ``postmortem-<INC>`` (started by the incident on resolve); an
action item is ``action-item-<INC>-A<n>``. Reads are ``state`` queries, actions are Updates
whose validators decide; Temporal's failures are translated by
:meth:`IncidentService.translate`, like every incident action. Input that can be checked
here (an unknown owner, a due date in the past) is refused here with a 400 naming the
field, before a round trip to the workflow.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowQueryFailedError
from temporalio.service import RPCError

from worker.errors import BadRequest, Forbidden
from worker.incident_service import IncidentService
from workflows.contracts import (
    ActionItemKind,
    ActionItemPriority,
    ActionItemState,
    ActionItemSummary,
    AddActionItem,
    CompleteActionItem,
    EditSection,
    ExportPostmortem,
    PostmortemResult,
    PostmortemState,
    ReassignActionItem,
    ReviewAction,
    SectionKey,
    SnoozeActionItem,
)
from workflows.postmortem_draft import render_markdown

M = TypeVar("M", bound=BaseModel)
ReviewVerb = Literal["submit", "approve", "request_changes", "publish", "refresh"]
ItemVerb = Literal["done", "drop", "reassign", "snooze"]


def postmortem_workflow_id(incident_id: str) -> str:
    """The Temporal workflow id of an incident's postmortem."""
    return f"postmortem-{incident_id}"


def action_item_workflow_id(item_id: str) -> str:
    """The Temporal workflow id of an action item (``INC-7-A1``)."""
    return f"action-item-{item_id}"


class NewActionItem(BaseModel):
    """What a person gives to create an action item."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300)
    owner: str = Field(min_length=1, max_length=200)
    due_at: datetime
    priority: ActionItemPriority = ActionItemPriority.P2
    kind: ActionItemKind = ActionItemKind.PREVENT
    link: str | None = Field(default=None, pattern=r"^https?://", max_length=2000)


class ActionItemRow(BaseModel):
    """One line of ``fireline actions list``."""

    id: str
    incident_id: str
    title: str
    owner: str
    priority: ActionItemPriority
    kind: ActionItemKind
    due_at: datetime
    status: str
    overdue: bool
    escalated: bool
    snoozed_until: datetime | None = None
    link: str | None = None
    reminders: int = 0


class PostmortemService:
    """Read and act on postmortems and their action items."""

    def __init__(self, incidents: IncidentService) -> None:
        self.incidents = incidents
        self.client = incidents.client
        self.config = incidents.config

    # --- postmortems -----------------------------------------------------------------------

    async def get(self, incident_id: str) -> PostmortemState:
        """The postmortem's current state (sections, review, action items)."""
        return await self._query(
            self._pm(incident_id), PostmortemState, incident_id, _no_postmortem(incident_id)
        )

    async def markdown(self, incident_id: str) -> str:
        """The postmortem as Markdown, exactly as the export writes it."""
        return render_markdown(await self.get(incident_id))

    async def edit(
        self, incident_id: str, section: SectionKey, text: str, actor: str
    ) -> PostmortemResult:
        """Replace one section's text."""
        return await self._pm_update(
            incident_id, "edit_section", EditSection(actor=actor, section=section, text=text)
        )

    async def review(
        self, incident_id: str, verb: ReviewVerb, actor: str, comment: str = ""
    ) -> PostmortemResult:
        """Submit, approve, request changes, publish, or refresh the facts from the incident."""
        return await self._pm_update(incident_id, verb, ReviewAction(actor=actor, comment=comment))

    async def export(self, incident_id: str, actor: str) -> PostmortemResult:
        """Write the Markdown and JSON files to the configured directory now."""
        return await self._pm_update(incident_id, "export", ExportPostmortem(actor=actor))

    async def add_action_item(
        self, incident_id: str, item: NewActionItem, actor: str
    ) -> ActionItemSummary:
        """Track an improvement as an ActionItemWorkflow of the postmortem."""
        self._check_user(item.owner, "owner")
        if item.due_at.tzinfo is None:
            raise BadRequest("due_at: give a time zone (e.g. 2026-12-01T17:00:00Z)")
        now = datetime.now(UTC)
        if item.due_at <= now:
            raise BadRequest(
                f"due_at: {item.due_at.isoformat()} is in the past (now {now:%Y-%m-%dT%H:%M}Z)"
            )
        arg = AddActionItem(actor=actor, **item.model_dump())
        return await self.incidents.execute_update(
            self._pm(incident_id),
            "add_action_item",
            arg,
            ActionItemSummary,
            subject=f"postmortem {incident_id}",
            missing=_no_postmortem(incident_id),
        )

    # --- action items ----------------------------------------------------------------------

    async def item(self, item_id: str) -> ActionItemState:
        """One action item with its reminders and history."""
        handle = self.client.get_workflow_handle(action_item_workflow_id(item_id))
        return await self._query(handle, ActionItemState, item_id, _no_item(item_id))

    async def act_on_item(
        self,
        item_id: str,
        verb: ItemVerb,
        actor: str,
        *,
        note: str = "",
        owner: str | None = None,
        until: datetime | None = None,
    ) -> ActionItemState:
        """Done, drop, reassign (``owner``) or snooze (``until``) an action item."""
        arg: BaseModel
        if verb == "reassign":
            if not owner:
                raise BadRequest("owner: say who takes the item")
            self._check_user(owner, "owner")
            arg = ReassignActionItem(actor=actor, owner=owner, note=note)
        elif verb == "snooze":
            if until is None:
                raise BadRequest("until: say until when reminders wait")
            if until.tzinfo is None:
                raise BadRequest("until: give a time zone (e.g. 2026-12-01T09:00:00Z)")
            arg = SnoozeActionItem(actor=actor, until=until, note=note)
        else:
            arg = CompleteActionItem(actor=actor, note=note)
        return await self.incidents.execute_update(
            self.client.get_workflow_handle(action_item_workflow_id(item_id)),
            verb,
            arg,
            ActionItemState,
            subject=f"action item {item_id}",
            missing=_no_item(item_id),
        )

    async def list_items(
        self,
        *,
        overdue: bool = False,
        owner: str | None = None,
        include_closed: bool = False,
        now: datetime | None = None,
        limit: int = 500,
    ) -> list[ActionItemRow]:
        """Action items from visibility, each read through its ``state`` query, by due date."""
        query = "WorkflowType = 'ActionItemWorkflow'"
        if not include_closed and not overdue:
            query += " AND ExecutionStatus = 'Running'"
        at = now or datetime.now(UTC)
        rows: list[ActionItemRow] = []
        try:
            async for execution in self.client.list_workflows(query, limit=limit):
                if execution.status is WorkflowExecutionStatus.TERMINATED:
                    continue
                handle = self.client.get_workflow_handle(execution.id)
                try:
                    state: ActionItemState = await handle.query(
                        "state", result_type=ActionItemState
                    )
                except (WorkflowQueryFailedError, RPCError):
                    continue  # ended between the listing and the query, or unreadable
                rows.append(_row(state, at))
        except RPCError as exc:
            raise self.incidents.translate(exc, None) from None
        if overdue:
            rows = [r for r in rows if r.overdue]
        if owner:
            rows = [r for r in rows if r.owner == owner]
        return sorted(rows, key=lambda r: (r.due_at, r.id))

    # --- plumbing ----------------------------------------------------------------------------

    def _pm(self, incident_id: str) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(postmortem_workflow_id(incident_id))

    async def _pm_update(self, incident_id: str, update: str, arg: BaseModel) -> PostmortemResult:
        return await self.incidents.execute_update(
            self._pm(incident_id),
            update,
            arg,
            PostmortemResult,
            subject=f"postmortem {incident_id}",
            missing=_no_postmortem(incident_id),
        )

    async def _query(
        self, handle: WorkflowHandle[Any, Any], result_type: type[M], subject: str, missing: str
    ) -> M:
        try:
            result: M = await handle.query("state", result_type=result_type)
            return result
        except (WorkflowQueryFailedError, RPCError) as exc:
            raise self.incidents.translate(exc, subject, missing=missing) from None

    def _check_user(self, handle: str, field: str) -> None:
        users = self.config.users
        if users and handle not in users:
            raise BadRequest(f"{field}: unknown user '{handle}'; known: {', '.join(sorted(users))}")

    def require_user(self, actor: str) -> None:
        """Refuse an acting user fireline does not know (403, as for incidents)."""
        users = self.config.users
        if users and actor not in users:
            raise Forbidden(f"unknown user '{actor}': not in fireline's user directory")


def _row(state: ActionItemState, now: datetime) -> ActionItemRow:
    return ActionItemRow(
        id=state.id,
        incident_id=state.incident_id,
        title=state.title,
        owner=state.owner,
        priority=state.priority,
        kind=state.kind,
        due_at=state.due_at,
        status=state.status,
        overdue=state.status == "open" and state.due_at < now,
        escalated=state.escalated,
        snoozed_until=state.snoozed_until,
        link=state.link,
        reminders=len(state.reminders),
    )


def _no_postmortem(incident_id: str) -> str:
    return f"no postmortem for {incident_id}: one is drafted when the incident is resolved"


def _no_item(item_id: str) -> str:
    return f"no action item {item_id}"

"""HTTP routes for postmortems and action items.

The caller (the API's ``caller`` dependency) is the actor of every change; the workflows'
validators decide, and refusals come back as 403 (unknown user, not a reviewer), 409 (not in
this state, or a required section still empty — the reason names them) or 400 (bad input,
naming the field).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from worker.incident_service import IncidentService
from worker.postmortem_service import (
    ActionItemRow,
    ItemVerb,
    NewActionItem,
    PostmortemService,
    ReviewVerb,
)
from workflows.contracts import (
    ActionItemState,
    ActionItemSummary,
    PostmortemResult,
    PostmortemState,
    SectionKey,
)

IncidentId = Annotated[str, Path(pattern=r"^INC-[0-9]+$", description="e.g. INC-42")]
ItemId = Annotated[str, Path(pattern=r"^INC-[0-9]+-A[0-9]+$", description="e.g. INC-42-A1")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SectionBody(_Body):
    """The section's new text (Markdown)."""

    text: str = Field(max_length=50_000)


class CommentBody(_Body):
    """An optional comment for the review history."""

    comment: str = Field(default="", max_length=5000)


class ItemNoteBody(_Body):
    """Why, for the item's history."""

    note: str = Field(default="", max_length=2000)


class ReassignBody(ItemNoteBody):
    """The new owner."""

    owner: str = Field(min_length=1, max_length=200)


class SnoozeBody(ItemNoteBody):
    """Until when reminders wait (with a time zone)."""

    until: datetime


def postmortem_router(incidents: IncidentService, caller: Callable[..., str]) -> APIRouter:
    """The postmortem and action-item routes."""
    service = PostmortemService(incidents)
    router = APIRouter(tags=["postmortems"])
    Caller = Annotated[str, Depends(caller)]  # noqa: N806 - a type alias, named as one

    @router.get("/v1/postmortems/{incident_id}")
    async def get_postmortem(incident_id: IncidentId, _: Caller) -> PostmortemState:
        """The postmortem: facts, sections, review and action items."""
        return await service.get(incident_id)

    @router.get("/v1/postmortems/{incident_id}/markdown", response_class=PlainTextResponse)
    async def get_markdown(incident_id: IncidentId, _: Caller) -> str:
        """The postmortem as Markdown."""
        return await service.markdown(incident_id)

    @router.put("/v1/postmortems/{incident_id}/sections/{section}")
    async def edit_section(
        incident_id: IncidentId, section: SectionKey, body: SectionBody, actor: Caller
    ) -> PostmortemResult:
        """Replace a section's text; ``warnings`` flag wording that points at people."""
        return await service.edit(incident_id, section, body.text, actor)

    def review(verb: ReviewVerb, doc: str) -> None:
        async def endpoint(
            incident_id: IncidentId,
            actor: Caller,
            body: Annotated[CommentBody | None, Body()] = None,
        ) -> PostmortemResult:
            return await service.review(incident_id, verb, actor, body.comment if body else "")

        endpoint.__doc__ = doc
        path = verb.replace("_", "-")
        router.post(f"/v1/postmortems/{{incident_id}}/{path}", name=f"{verb}_postmortem")(endpoint)

    review("submit", "Draft → in review.")
    review("approve", "A reviewer signs off.")
    review("request_changes", "In review → draft; the comment says what to change.")
    review("publish", "In review → published; refused while a required section is empty.")
    review("refresh", "Gather the incident's record again; edited sections are kept.")

    @router.post("/v1/postmortems/{incident_id}/export")
    async def export(incident_id: IncidentId, actor: Caller) -> PostmortemResult:
        """Write the Markdown and JSON files to the configured directory."""
        return await service.export(incident_id, actor)

    @router.get("/v1/postmortems/{incident_id}/action-items")
    async def postmortem_items(incident_id: IncidentId, _: Caller) -> list[ActionItemSummary]:
        """The postmortem's action items."""
        return (await service.get(incident_id)).action_items

    @router.post("/v1/postmortems/{incident_id}/action-items", status_code=201)
    async def add_item(
        incident_id: IncidentId, body: NewActionItem, actor: Caller
    ) -> ActionItemSummary:
        """Track an improvement with an owner and a due date."""
        return await service.add_action_item(incident_id, body, actor)

    @router.get("/v1/action-items")
    async def list_items(
        _: Caller,
        overdue: Annotated[bool, Query()] = False,
        owner: Annotated[str | None, Query(max_length=200)] = None,
        all: Annotated[bool, Query(description="include done and dropped")] = False,
    ) -> list[ActionItemRow]:
        """Action items across postmortems, soonest due first."""
        return await service.list_items(overdue=overdue, owner=owner, include_closed=all)

    @router.get("/v1/action-items/{item_id}")
    async def get_item(item_id: ItemId, _: Caller) -> ActionItemState:
        """One action item with its reminders and history."""
        return await service.item(item_id)

    def close(verb: ItemVerb, doc: str) -> None:
        async def endpoint(
            item_id: ItemId,
            actor: Caller,
            body: Annotated[ItemNoteBody | None, Body()] = None,
        ) -> ActionItemState:
            return await service.act_on_item(item_id, verb, actor, note=body.note if body else "")

        endpoint.__doc__ = doc
        router.post(f"/v1/action-items/{{item_id}}/{verb}", name=f"{verb}_action_item")(endpoint)

    close("done", "The work is done.")
    close("drop", "The item will not be done; the note says why.")

    @router.post("/v1/action-items/{item_id}/reassign")
    async def reassign(item_id: ItemId, body: ReassignBody, actor: Caller) -> ActionItemState:
        """Hand the item to a new owner; reminders start over for them."""
        return await service.act_on_item(
            item_id, "reassign", actor, owner=body.owner, note=body.note
        )

    @router.post("/v1/action-items/{item_id}/snooze")
    async def snooze(item_id: ItemId, body: SnoozeBody, actor: Caller) -> ActionItemState:
        """Hold reminders until a moment; the due date stays."""
        return await service.act_on_item(item_id, "snooze", actor, until=body.until, note=body.note)

    return router

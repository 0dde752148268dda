"""The war room as Temporal activities: ``war_room.open`` and ``war_room.post``.

The workflow decides *when* (severity policy, which timeline kinds are mirrored); these
activities only do it, idempotently, through one provider chosen by ``worker/wiring.py``:
:class:`activities.providers.slack_channels.SlackWarRooms` or
:class:`activities.providers.webhook_war_room.WebhookWarRooms`. Errors are the providers'
:class:`activities.http.DeliveryError` types; a 429's ``Retry-After`` is the next retry delay.
"""

from __future__ import annotations

from typing import Protocol

from temporalio import activity

from workflows.contracts import OpenWarRoom, WarRoom, WarRoomPost, WarRoomPosted


class WarRoomProvider(Protocol):
    """One chat vendor's war room."""

    async def open(self, req: OpenWarRoom) -> WarRoom:
        """Open the incident's room, or find the one an earlier attempt opened."""
        ...

    async def post(self, req: WarRoomPost, *, retried: bool = False) -> WarRoomPosted:
        """Mirror one timeline entry; ``retried``: an earlier attempt may have posted it."""
        ...


class WarRoomActivities:
    """The war-room activities, bound to one provider."""

    def __init__(self, provider: WarRoomProvider) -> None:
        """Use ``provider`` for every room."""
        self._provider = provider

    @activity.defn(name="war_room.open")
    async def open(self, req: OpenWarRoom) -> WarRoom:
        """Create the incident's channel, invite responders, set the topic, post the summary."""
        return await self._provider.open(req)

    @activity.defn(name="war_room.post")
    async def post(self, req: WarRoomPost) -> WarRoomPosted:
        """Post one timeline entry in the war room's thread, at most once."""
        # Only a retry can find its own earlier post; the first attempt skips the lookup.
        retried = activity.info().attempt > 1
        return await self._provider.post(req, retried=retried)

"""CommsWorkflow: the incident's voice — war room, stakeholder updates, update reminders.

A child of the incident (``comms-<ID>``, parent close = abandon, like the escalation). The
incident decides *what* is said (Updates, timeline, redaction); this workflow does the
talking, which is slow and fails in vendor-specific ways (Slack rate limits, Statuspage
5xx), so none of it can hold up an Update or bloat the incident's history:

- opens the war room when the severity calls for one (now or after a raise);
- mirrors the incident's key timeline entries into it, threaded under the summary;
- delivers each stakeholder update to its audiences (war room, executives, status page);
- keeps the update cadence: a reminder to the communications lead when an update is due,
  and the commander is told when it stays missed.

Everything it did goes back to the incident as ``comms_event`` signals, so the incident's
timeline stays the one record. It ends when the incident closes.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.contracts import Page, PageResult, PageSeverity, Urgency
    from workflows.contracts import (
        Audience,
        CommsEvent,
        CommsFacts,
        CommsInput,
        CommsNews,
        DeliverUpdate,
        IncidentStatus,
        MirrorItem,
        OpenWarRoom,
        Role,
        StatusPublication,
        StatusPublished,
        UpdateDelivery,
        WarRoom,
        WarRoomPost,
        WarRoomPosted,
    )
    from workflows.failures import activity_failure_reason
    from workflows.history import history_is_long

# Chat and status page vendors rate-limit and have bad minutes; a post that still fails
# after this long is reported on the timeline rather than retried for ever.
TALK_TIMEOUT = timedelta(seconds=30)
# Opening may list channels and pace its summary post behind the channel's rate limit.
OPEN_TIMEOUT = timedelta(minutes=2)
TALK_DEADLINE = timedelta(minutes=10)
TALK_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(minutes=1),
    # Config or input a person must fix; retrying cannot help (vendors' 4xx are typed
    # PermanentHttpError by the providers).
    non_retryable_error_types=[
        "InvalidRequest",
        "ProviderNotConfigured",
        "InvalidChannelName",
        "ChannelNamesExhausted",
        "PermanentHttpError",
        "PublicationRefused",
        "InvalidPublication",
    ],
)
REMINDER_RETRY = RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=2))

T = TypeVar("T")


@workflow.defn
class CommsWorkflow:
    """Talks for one incident until it closes."""

    @workflow.init
    def __init__(self, inp: CommsInput) -> None:
        self._in = inp
        self._snap = inp.snapshot
        self._facts = inp.facts
        self._room = inp.room
        self._queue: list[CommsNews] = [inp.pending] if _has_work(inp.pending) else []
        self._reminded = list(inp.reminded)
        self._facts_seen = 0
        self._facts_version = 0

    @workflow.signal
    def tell(self, news: CommsNews) -> None:
        """The incident changed, has entries to mirror, or an update to deliver."""
        if news.facts is not None:
            self._facts = news.facts
            self._facts_version += 1
        if news.mirror or news.deliver:
            self._queue.append(news.model_copy(update={"facts": None}))

    @workflow.query
    def room(self) -> WarRoom | None:
        """The war room, once open."""
        return self._room

    @workflow.run
    async def run(self, inp: CommsInput) -> None:
        """Open, mirror, deliver and remind until the incident closes."""
        while True:
            await self._open_room_if_called_for()
            while self._queue:
                news = self._queue.pop(0)
                for item in news.mirror:
                    await self._mirror(item)
                for delivery in news.deliver:
                    await self._deliver(delivery)
            if self._facts.status is IncidentStatus.CLOSED:
                return
            if history_is_long():
                await self._continue_as_new()
            await self._wait_for_news_or_reminder()

    # --- cadence -------------------------------------------------------------------------

    async def _wait_for_news_or_reminder(self) -> None:
        seen = self._facts_version
        stage, at = self._next_reminder()

        def news() -> bool:
            return bool(self._queue) or self._facts_version != seen or history_is_long()

        if at is None:
            await workflow.wait_condition(news)
            return
        remaining = at - workflow.now()
        if remaining > timedelta(0):
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(news, timeout=remaining)
                return
        await self._remind(stage)

    def _next_reminder(self) -> tuple[int, datetime | None]:
        """The next reminder stage for the current due time, and when it fires."""
        due = self._facts.next_update_due
        if due is None:
            return 0, None
        if f"{due.isoformat()}:1" not in self._reminded:
            return 1, due
        if f"{due.isoformat()}:2" not in self._reminded:
            return 2, due + self._snap.overdue_after
        return 0, None

    async def _remind(self, stage: int) -> None:
        due = self._facts.next_update_due
        assert due is not None
        self._reminded.append(f"{due.isoformat()}:{stage}")
        roles = self._facts.roles
        commander = roles.get(Role.COMMANDER)
        if stage == 1:
            who = roles.get(Role.COMMUNICATIONS) or commander
            text = (
                f"a stakeholder update for {self._facts.incident_id} is due now "
                f"({self._facts.severity.value} cadence)"
            )
            kind = "update_due"
        else:
            who = commander
            late = self._snap.overdue_after
            text = (
                f"the stakeholder update for {self._facts.incident_id} is "
                f"{_minutes(late)} overdue: telling the commander"
            )
            kind = "update_overdue"
        if who is None:
            await self._report(kind, text + "; nobody holds the role to remind, post one now")
            return
        reached = await self._notify(who, kind, due.isoformat(), text)
        await self._report(kind, f"{text}; reminded {who}" if reached else text)

    async def _notify(self, who: str, kind: str, key: str, text: str) -> bool:
        contact = self._snap.contacts.get(who)
        if contact is None:
            await self._report("comms_failed", f"cannot remind {who}: no contact method for them")
            return False
        page = Page(
            dedup_key=f"{self._facts.incident_id}-{kind}-{key}-{who}"[:255],
            incident_id=self._facts.incident_id,
            title=f"{self._facts.incident_id}: {text}",
            summary=f"Post an update: fireline incident update {self._facts.incident_id}",
            severity=PageSeverity(self._facts.severity.value),
            # A reminder, not a page: it must not wake anyone the way an outage does.
            urgency=Urgency.LOW,
            informational=True,
            recipient=who,
            contact=contact,
            service=self._facts.service,
        )
        _, reason = await _talk("notify.send", page, PageResult, retry=REMINDER_RETRY)
        if reason:
            await self._report("comms_failed", f"reminding {who} failed: {reason}")
        return not reason

    # --- war room ------------------------------------------------------------------------

    async def _open_room_if_called_for(self) -> None:
        facts = self._facts
        if (
            self._room is not None
            or facts.severity not in self._snap.war_room_severities
            or facts.status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED)
        ):
            return
        invite = sorted(
            {self._snap.chat_ids[u] for u in facts.roles.values() if u in self._snap.chat_ids}
        )
        req = OpenWarRoom(
            incident_id=facts.incident_id,
            title=facts.title,
            severity=facts.severity,
            service=facts.service,
            summary=facts.summary,
            commander=facts.roles.get(Role.COMMANDER),
            invite=invite,
            links=self._snap.war_room_links,
        )
        room, reason = await _talk("war_room.open", req, WarRoom, start=OPEN_TIMEOUT)
        if room is None:
            # Not retried on every later event (that would flood the timeline): the reason
            # is on the timeline, and the commander can open a channel by hand.
            await self._report("comms_failed", f"could not open the war room: {reason}")
            self._snap = self._snap.model_copy(update={"war_room_severities": []})
            return
        self._room = room
        where = room.channel_name or room.url or room.provider
        await self._report("war_room_opened", f"war room opened: {where}", room=room)

    async def _mirror(self, item: MirrorItem) -> None:
        if self._room is None:
            return
        await self._post(item.entry_id, item.kind, item.text)

    async def _post(self, entry_id: str, kind: str, text: str) -> str:
        """Post into the war room thread; '' on success, else why not."""
        assert self._room is not None
        post = WarRoomPost(
            incident_id=self._facts.incident_id,
            room=self._room,
            entry_id=entry_id,
            kind=kind,
            text=text,
        )
        _, reason = await _talk("war_room.post", post, WarRoomPosted)
        if reason:
            await self._report("comms_failed", f"could not post {kind} to the war room: {reason}")
        return reason

    # --- stakeholder updates -------------------------------------------------------------

    async def _deliver(self, d: DeliverUpdate) -> None:
        deliveries: list[UpdateDelivery] = []
        published: StatusPublished | None = None
        for audience in d.update.audiences:
            text = d.texts.get(audience, d.update.text)
            if audience is Audience.RESPONDERS:
                deliveries.append(await self._to_responders(d, text))
            elif audience is Audience.EXECUTIVES:
                deliveries.extend(await self._to_executives(d, text))
            else:
                delivery, published = await self._to_customers(d, text)
                deliveries.append(delivery)
        failed = [x for x in deliveries if not x.ok]
        summary = ", ".join(f"{x.audience.value} via {x.channel}" for x in deliveries if x.ok)
        text = f"update {d.update.id} delivered to {summary or 'nobody'}"
        if failed:
            text += "; not delivered: " + "; ".join(
                f"{x.audience.value} via {x.channel} ({x.detail})" for x in failed
            )
        await self._report(
            "update_delivered",
            text,
            update_id=d.update.id,
            deliveries=deliveries,
            published=published,
        )

    async def _to_responders(self, d: DeliverUpdate, text: str) -> UpdateDelivery:
        if self._room is None:
            return UpdateDelivery(
                audience=Audience.RESPONDERS, channel="timeline", ok=True, detail="no war room"
            )
        reason = await self._post(f"update-{d.update.id}", "stakeholder_update", text)
        return UpdateDelivery(
            audience=Audience.RESPONDERS,
            channel=f"war room ({self._room.provider})",
            ok=not reason,
            detail=reason,
        )

    async def _to_executives(self, d: DeliverUpdate, text: str) -> list[UpdateDelivery]:
        policy = self._snap.audiences.get(Audience.EXECUTIVES)
        if policy is None or not policy.recipients:
            return [
                UpdateDelivery(
                    audience=Audience.EXECUTIVES,
                    channel="none",
                    ok=False,
                    detail="no executive recipients are configured",
                )
            ]
        out = []
        for who, contact in sorted(policy.recipients.items()):
            page = Page(
                dedup_key=f"{self._facts.incident_id}-update-{d.update.id}-{who}"[:255],
                incident_id=self._facts.incident_id,
                title=f"Update on {self._facts.incident_id}: {d.public_title}",
                summary=text,
                severity=PageSeverity(self._facts.severity.value),
                urgency=Urgency.LOW,
                informational=True,
                recipient=who,
                contact=contact,
                service=self._facts.service,
            )
            _, reason = await _talk("notify.send", page, PageResult)
            out.append(
                UpdateDelivery(
                    audience=Audience.EXECUTIVES,
                    channel=f"{contact.kind.value} to {who}",
                    ok=not reason,
                    detail=reason,
                )
            )
        return out

    async def _to_customers(
        self, d: DeliverUpdate, text: str
    ) -> tuple[UpdateDelivery, StatusPublished | None]:
        if not self._snap.status_page:
            return (
                UpdateDelivery(
                    audience=Audience.CUSTOMERS,
                    channel="none",
                    ok=False,
                    detail="no status page is configured",
                ),
                None,
            )
        u = d.update
        pub = StatusPublication(
            incident_id=self._facts.incident_id,
            update_id=u.id,
            at=u.at,
            title=d.public_title,
            status=u.status,
            impact=u.impact,
            body=text,
            components=u.components,
        )
        published, reason = await _talk("status_page.publish", pub, StatusPublished)
        if published is None:
            return (
                UpdateDelivery(
                    audience=Audience.CUSTOMERS, channel="status page", ok=False, detail=reason
                ),
                None,
            )
        channel = f"status page ({published.provider})"
        return UpdateDelivery(audience=Audience.CUSTOMERS, channel=channel, ok=True), published

    # --- helpers -------------------------------------------------------------------------

    async def _report(
        self,
        kind: str,
        text: str,
        *,
        room: WarRoom | None = None,
        published: StatusPublished | None = None,
        update_id: str | None = None,
        deliveries: list[UpdateDelivery] | None = None,
    ) -> None:
        event = CommsEvent(
            kind=kind,
            text=text,
            room=room,
            published=published,
            update_id=update_id,
            deliveries=deliveries or [],
        )
        incident = workflow.get_external_workflow_handle(self._in.incident_workflow_id)
        # A closed incident cannot hear any more; what it missed was its last words.
        with contextlib.suppress(Exception):
            await incident.signal("comms_event", event)

    async def _continue_as_new(self) -> None:
        pending = CommsNews()
        for news in self._queue:
            pending.mirror.extend(news.mirror)
            pending.deliver.extend(news.deliver)
        workflow.continue_as_new(
            self._in.model_copy(
                update={
                    "snapshot": self._snap,
                    "facts": self._facts,
                    "room": self._room,
                    "pending": pending,
                    "reminded": self._reminded[-20:],
                }
            )
        )


async def _talk(
    activity: str,
    arg: Any,
    result_type: type[T],
    *,
    start: timedelta = TALK_TIMEOUT,
    retry: RetryPolicy = TALK_RETRY,
) -> tuple[T | None, str]:
    """Run one talking activity: its result, or None and why it failed (never raises)."""
    try:
        result: T = await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=start,
            schedule_to_close_timeout=TALK_DEADLINE,
            retry_policy=retry,
        )
    except ActivityError as err:
        return None, activity_failure_reason(err)
    return result, ""


def _has_work(news: CommsNews) -> bool:
    return bool(news.mirror or news.deliver)


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes else f"{int(delta.total_seconds())} s"


__all__ = ["CommsFacts", "CommsWorkflow"]

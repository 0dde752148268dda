"""Communications on the time-skipping server: the war room, mirrored timeline entries,
stakeholder updates per audience with redaction, the update cadence's reminders and the
commander escalation, and the status page told when the incident resolves.

The four activities communications calls are faked here (their real implementations
talk to loopback Slack and Statuspage fakes in their own tests); what is under test is
what the workflows decide to say, to whom and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.contracts import ContactKind, ContactMethod, Page, PageResult, Urgency
from tests.support import eventually
from workflows.comms import CommsWorkflow
from workflows.comms_policy import BUILTIN_RULES
from workflows.contracts import (
    AssignRole,
    Audience,
    AudiencePolicy,
    Close,
    CommsSnapshot,
    ComponentStatus,
    ConfigSnapshot,
    DeclareIncident,
    IncidentState,
    IncidentStatus,
    OpenWarRoom,
    PostUpdate,
    PublicStatus,
    Resolve,
    Role,
    SetSeverity,
    Severity,
    SizeLimit,
    StatusImpact,
    StatusPublication,
    StatusPublished,
    UserRef,
    WarRoom,
    WarRoomLinks,
    WarRoomPost,
    WarRoomPosted,
)
from workflows.incident import IncidentWorkflow

CONSOLE = ContactMethod(kind=ContactKind.CONSOLE)


@dataclass
class Talk:
    """The activities communications calls, faked: everything said is recorded."""

    opened: list[OpenWarRoom] = field(default_factory=list)
    posts: list[WarRoomPost] = field(default_factory=list)
    published: list[StatusPublication] = field(default_factory=list)
    notified: list[Page] = field(default_factory=list)
    fail_status_page: str = ""
    # Set: status page publications wait for it (a vendor slower than the people).
    hold_status_page: asyncio.Event | None = None

    @activity.defn(name="war_room.open")
    async def open(self, req: OpenWarRoom) -> WarRoom:
        self.opened.append(req)
        name = req.incident_id.lower() + "-checkout"
        return WarRoom(provider="slack", channel_id="C1", channel_name=name, thread_ts="1.0")

    @activity.defn(name="war_room.post")
    async def post(self, req: WarRoomPost) -> WarRoomPosted:
        self.posts.append(req)
        return WarRoomPosted(
            provider="slack", channel_id=req.room.channel_id, ts=str(len(self.posts))
        )

    @activity.defn(name="status_page.publish")
    async def publish(self, pub: StatusPublication) -> StatusPublished:
        if self.fail_status_page:
            raise ApplicationError(self.fail_status_page, type="InvalidRequest", non_retryable=True)
        if self.hold_status_page is not None:
            await self.hold_status_page.wait()
        self.published.append(pub)
        return StatusPublished(provider="builtin", external_id=pub.incident_id, url="/status")

    @activity.defn(name="notify.send")
    async def send(self, page: Page) -> PageResult:
        self.notified.append(page)
        return PageResult(
            provider=page.contact.kind,
            delivered=True,
            external_id=page.dedup_key,
            action=page.action,
            dedup_key=page.dedup_key,
        )

    def kinds(self) -> list[str]:
        return [p.kind for p in self.posts]

    def worker(self, client: Client, queue: str) -> Worker:
        """A worker for the incident and its communications, talking to these fakes."""
        return Worker(
            client,
            task_queue=queue,
            workflows=[IncidentWorkflow, CommsWorkflow],
            activities=[self.open, self.post, self.publish, self.send],
        )


@pytest.fixture
async def env(own_time_env: WorkflowEnvironment) -> WorkflowEnvironment:
    # A server per test: after a scenario that skipped time the shared server now and then
    # stopped delivering later tests' activities (see conftest.own_time_env).
    return own_time_env


@pytest.fixture
async def talk(env: WorkflowEnvironment) -> AsyncIterator[tuple[Talk, Client, str]]:
    fake = Talk()
    queue = f"tq-{uuid.uuid4()}"
    async with fake.worker(env.client, queue):
        yield fake, env.client, queue


def snapshot(**changes: Any) -> ConfigSnapshot:
    customers = [BUILTIN_RULES[n] for n in ("email", "patient_id", "account_number")]
    comms = CommsSnapshot(
        cadence={Severity.SEV1: timedelta(minutes=30), Severity.SEV2: timedelta(minutes=60)},
        overdue_after=timedelta(minutes=10),
        war_room_severities=[Severity.SEV1, Severity.SEV2],
        war_room_links=WarRoomLinks(bridge="https://meet.example.com/checkout"),
        # As worker.war_room_config's defaults: stakeholder updates are mirrored too.
        mirror_kinds=[
            "role_assigned",
            "severity_changed",
            "resolved",
            "update_due",
            "stakeholder_update",
        ],
        chat_ids={"alice": "U0ALICE", "bob": "U0BOB"},
        contacts={"alice": CONSOLE, "bob": CONSOLE, "carol": CONSOLE, "dana": CONSOLE},
        audiences={
            Audience.RESPONDERS: AudiencePolicy(template="{incident_id} update: {text}"),
            Audience.EXECUTIVES: AudiencePolicy(
                template="[{severity}] {title}: {text}",
                redact=[BUILTIN_RULES["patient_id"]],
                recipients={"dana": CONSOLE},
            ),
            Audience.CUSTOMERS: AudiencePolicy(template="{text}", redact=customers),
        },
        status_page=True,
        all_components=["checkout", "website", "payments-api"],
        components=["checkout"],
        limits={Audience.CUSTOMERS: SizeLimit(chars=500, vendor="Atlassian Statuspage")},
        **changes,
    )
    users = {
        h: UserRef(handle=h, name=h.title(), email=f"{h}@example.com")
        for h in ("alice", "bob", "carol", "dana")
    }
    return ConfigSnapshot(users=users, comms=comms)


async def declare(
    client: Client, queue: str, severity: Severity = Severity.SEV1, **changes: Any
) -> WorkflowHandle[Any, Any]:
    number = uuid.uuid4().int % 10**6
    return await client.start_workflow(
        IncidentWorkflow.run,
        DeclareIncident(
            id=f"INC-{number}",
            title="Checkout failing for MRN 7654321",
            service="checkout",
            severity=severity,
            declared_by="alice",
            commander="alice",
            config=snapshot(**changes),
        ),
        id=f"incident-INC-{number}",
        task_queue=queue,
    )


async def state(handle: WorkflowHandle[Any, Any]) -> IncidentState:
    result: IncidentState = await handle.query(IncidentWorkflow.state)
    return result


async def kinds(handle: WorkflowHandle[Any, Any]) -> list[str]:
    return [e.kind for e in (await state(handle)).timeline]


@contextlib.asynccontextmanager
async def incident(
    client: Client, queue: str, severity: Severity = Severity.SEV1, **changes: Any
) -> AsyncIterator[WorkflowHandle[Any, Any]]:
    handle = await declare(client, queue, severity, **changes)
    try:
        yield handle
    finally:
        comms_id = "comms-" + handle.id.removeprefix("incident-")
        for wf in (handle.id, comms_id):
            with contextlib.suppress(RPCError):
                await client.get_workflow_handle(wf).terminate("test finished")


async def test_a_sev1_opens_the_war_room_and_mirrors_key_entries(
    talk: tuple[Talk, Client, str],
) -> None:
    fake, client, queue = talk
    async with incident(client, queue) as handle:

        async def opened() -> IncidentState:
            s = await state(handle)
            assert s.war_room is not None
            return s

        s = await eventually(opened)
        assert s.war_room is not None
        assert s.war_room.channel_id == "C1"
        assert "war_room_opened" in [e.kind for e in s.timeline]
        [req] = fake.opened
        assert req.invite == ["U0ALICE"]
        assert req.commander == "alice"
        assert req.links.bridge == "https://meet.example.com/checkout"

        await handle.execute_update(
            IncidentWorkflow.assign_role, AssignRole(actor="alice", role=Role.SCRIBE, user="bob")
        )

        async def mirrored() -> None:
            assert "role_assigned" in fake.kinds()

        await eventually(mirrored)
        post = next(p for p in fake.posts if p.kind == "role_assigned")
        assert "made bob scribe" in post.text
        assert post.room.thread_ts == "1.0"
        # A note is not a key event: it stays off the channel.
        assert "note" not in fake.kinds()


async def test_a_sev3_has_no_war_room_until_it_is_raised(talk: tuple[Talk, Client, str]) -> None:
    fake, client, queue = talk
    async with incident(client, queue, Severity.SEV3) as handle:
        s = await state(handle)
        assert s.war_room is None
        assert s.next_update_due is None
        await handle.execute_update(
            IncidentWorkflow.set_severity,
            SetSeverity(actor="alice", severity=Severity.SEV2, reason="more customers hit"),
        )

        async def opened() -> None:
            assert (await state(handle)).war_room is not None

        await eventually(opened)
        assert len(fake.opened) == 1
        s = await state(handle)
        # SEV2's cadence applies from the raise on (measured from the declaration).
        assert s.next_update_due == s.declared_at + timedelta(minutes=60)


async def test_an_update_reaches_each_audience_in_its_own_words(
    talk: tuple[Talk, Client, str],
) -> None:
    fake, client, queue = talk
    async with incident(client, queue) as handle:
        await handle.execute_update(
            IncidentWorkflow.assign_role,
            AssignRole(actor="alice", role=Role.COMMUNICATIONS, user="carol"),
        )
        text = "Payments for MRN 1234567 fail; contact alice@example.com about account 99887766."
        result = await handle.execute_update(
            IncidentWorkflow.post_update,
            PostUpdate(actor="carol", text=text, status=PublicStatus.IDENTIFIED),
        )
        assert result.entry.kind == "stakeholder_update"

        async def delivered() -> IncidentState:
            s = await state(handle)
            assert s.updates[0].deliveries
            return s

        s = await eventually(delivered)
        update = s.updates[0]
        assert update.status is PublicStatus.IDENTIFIED
        assert update.impact is StatusImpact.CRITICAL
        assert update.components == {"checkout": ComponentStatus.MAJOR_OUTAGE}
        assert all(d.ok for d in update.deliveries), update.deliveries
        assert {d.audience for d in update.deliveries} == set(Audience)
        assert s.status_page is not None
        assert s.status_page.provider == "builtin"
        assert s.next_update_due == update.at + timedelta(minutes=30)

        # Customers: every identifier is gone, from the body and the title.
        [pub] = fake.published
        assert pub.body == "Payments for [patient] fail; contact [email] about [account]."
        assert pub.title == "Checkout failing for [patient]"
        assert pub.components == {"checkout": ComponentStatus.MAJOR_OUTAGE}
        assert pub.update_id == update.id
        # Executives: their template, patient ids redacted, the account kept.
        [exec_page] = [p for p in fake.notified if p.recipient == "dana"]
        assert exec_page.urgency is Urgency.LOW
        assert exec_page.summary.startswith("[SEV1] Checkout failing for [patient]: Payments")
        assert "account 99887766" in exec_page.summary
        # Responders: in the war room, unredacted, threaded, once (delivery posts it; the
        # timeline entry is not mirrored on top).
        [post] = [p for p in fake.posts if p.kind == "stakeholder_update"]
        assert post.text == f"{s.id} update: {text}"


async def test_an_update_not_for_responders_is_still_mirrored_into_the_war_room(
    talk: tuple[Talk, Client, str],
) -> None:
    fake, client, queue = talk
    async with incident(client, queue) as handle:
        await handle.execute_update(
            IncidentWorkflow.post_update,
            PostUpdate(actor="alice", text="We are on it.", audiences=[Audience.CUSTOMERS]),
        )

        async def told() -> None:
            assert fake.published
            assert [p for p in fake.posts if p.kind == "stakeholder_update"]

        await eventually(told)
        # Responders learn what customers were told, as the timeline says it.
        [post] = [p for p in fake.posts if p.kind == "stakeholder_update"]
        assert post.text.startswith("alice posted update ")
        assert post.text.endswith("for customers: We are on it.")


async def test_a_missed_update_reminds_the_comms_lead_then_tells_the_commander(
    env: WorkflowEnvironment, talk: tuple[Talk, Client, str]
) -> None:
    fake, client, queue = talk
    async with incident(client, queue) as handle:
        await handle.execute_update(
            IncidentWorkflow.assign_role,
            AssignRole(actor="alice", role=Role.COMMUNICATIONS, user="carol"),
        )
        await env.sleep(timedelta(minutes=29))
        assert "update_due" not in await kinds(handle)
        assert not [p for p in fake.notified if p.recipient == "carol"]

        await env.sleep(timedelta(minutes=2))

        async def reminded() -> None:
            assert "update_due" in await kinds(handle)

        await eventually(reminded)
        [reminder] = [p for p in fake.notified if p.recipient == "carol"]
        assert reminder.urgency is Urgency.LOW
        assert "due now" in reminder.title
        assert not [p for p in fake.notified if p.recipient == "alice"]
        # The reminder is mirrored into the war room too.

        async def in_the_war_room() -> None:
            assert "update_due" in fake.kinds()

        await eventually(in_the_war_room)

        await env.sleep(timedelta(minutes=10))

        async def escalated() -> None:
            assert "update_overdue" in await kinds(handle)

        await eventually(escalated)
        [to_commander] = [p for p in fake.notified if p.recipient == "alice"]
        assert "overdue" in to_commander.title

        # An update resets the cadence: nothing more until 30 minutes after it.
        await handle.execute_update(
            IncidentWorkflow.post_update,
            PostUpdate(actor="carol", text="Still investigating.", audiences=[Audience.RESPONDERS]),
        )
        sent = len(fake.notified)
        await env.sleep(timedelta(minutes=29))
        assert len([p for p in fake.notified if "due now" in p.title]) == 1
        assert len(fake.notified) == sent


async def test_resolving_tells_customers_and_turns_components_operational(
    talk: tuple[Talk, Client, str],
) -> None:
    fake, client, queue = talk
    async with incident(client, queue) as handle:
        await handle.execute_update(
            IncidentWorkflow.post_update,
            PostUpdate(
                actor="alice",
                text="Checkout is failing for some customers.",
                components={
                    "checkout": ComponentStatus.PARTIAL_OUTAGE,
                    "website": ComponentStatus.DEGRADED_PERFORMANCE,
                },
            ),
        )

        async def first_told() -> None:
            assert len(fake.published) == 1

        # Resolving starts the reopen window's hour, which the test server may skip at once.
        await eventually(first_told)
        await handle.execute_update(
            IncidentWorkflow.resolve, Resolve(actor="alice", summary="rolled back v2")
        )

        async def told() -> None:
            assert len(fake.published) == 2

        await eventually(told)
        last = fake.published[-1]
        assert last.status is PublicStatus.RESOLVED
        assert last.components == {
            "checkout": ComponentStatus.OPERATIONAL,
            "website": ComponentStatus.OPERATIONAL,
        }
        assert last.body == "This incident has been resolved."
        assert (await state(handle)).next_update_due is None


async def test_closed_right_after_resolving_the_incident_still_hears_communications_out(
    talk: tuple[Talk, Client, str],
) -> None:
    fake, client, queue = talk
    fake.hold_status_page = asyncio.Event()
    async with incident(client, queue) as handle:
        await handle.execute_update(
            IncidentWorkflow.post_update,
            PostUpdate(
                actor="alice",
                text="Checkout is failing for some customers.",
                components={"checkout": ComponentStatus.PARTIAL_OUTAGE},
            ),
        )
        await handle.execute_update(
            IncidentWorkflow.resolve, Resolve(actor="alice", summary="rolled back v2")
        )
        await handle.execute_update(IncidentWorkflow.close, Close(actor="alice"))

        async def closed() -> None:
            assert (await state(handle)).status is IncidentStatus.CLOSED

        await eventually(closed)
        # The status page answers only now, after the incident closed.
        fake.hold_status_page.set()
        await handle.result()
        final = await state(handle)
        assert final.status_page is not None, "the status page report was lost"
        assert final.status_page.external_id == final.id


async def test_a_status_page_failure_is_on_the_timeline_not_lost(
    talk: tuple[Talk, Client, str],
) -> None:
    fake, client, queue = talk
    fake.fail_status_page = "Statuspage answered 401: invalid API key"
    async with incident(client, queue) as handle:
        await handle.execute_update(
            IncidentWorkflow.post_update, PostUpdate(actor="alice", text="Looking into it.")
        )

        async def reported() -> IncidentState:
            s = await state(handle)
            assert s.updates[0].deliveries
            return s

        s = await eventually(reported)
        failed = [d for d in s.updates[0].deliveries if not d.ok]
        assert [d.audience for d in failed] == [Audience.CUSTOMERS]
        assert "invalid API key" in failed[0].detail
        delivered = next(e for e in s.timeline if e.kind == "update_delivered")
        assert "not delivered: customers via status page" in delivered.text


@pytest.mark.parametrize(
    ("update", "reason"),
    [
        (PostUpdate(actor="alice", text="x" * 501), "Atlassian Statuspage accepts at most 500"),
        (
            PostUpdate(actor="alice", text="x" * 501, audiences=[Audience.RESPONDERS]),
            None,
        ),
        (
            PostUpdate(
                actor="alice", text="hi", components={"kitchen": ComponentStatus.MAJOR_OUTAGE}
            ),
            "unknown status page component(s) kitchen",
        ),
        (PostUpdate(actor="mallory", text="hi"), "unknown user 'mallory'"),
        (PostUpdate(actor="alice", text="   "), "an update needs text"),
        (PostUpdate(actor="alice", text="hi", audiences=[]), "at least one audience"),
    ],
)
async def test_bad_updates_are_refused_with_the_reason(
    talk: tuple[Talk, Client, str], update: PostUpdate, reason: str | None
) -> None:
    _, client, queue = talk
    async with incident(client, queue) as handle:
        if reason is None:
            await handle.execute_update(IncidentWorkflow.post_update, update)
            assert len((await state(handle)).updates) == 1
            return
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(IncidentWorkflow.post_update, update)
        assert reason in str(refused.value.cause)
        assert (await state(handle)).updates == []


async def test_an_incident_resolved_before_its_first_task_still_tells_everyone(
    env: WorkflowEnvironment,
) -> None:
    """No worker while an update is posted and the incident resolved (a deploy, a crash).

    The worker's first task then runs both Updates before the incident's own start, so it
    met a resolved incident when communications were due to start, and started none: no
    status page, and both updates recorded but never delivered (found by make chaos, seed
    3). Communications start anyway and deliver what was recorded; no war room is opened
    for an incident already over, and the timeline says so.
    """
    fake = Talk()
    queue = f"tq-{uuid.uuid4()}"
    async with incident(env.client, queue) as handle:
        posted = asyncio.create_task(
            handle.execute_update(
                IncidentWorkflow.post_update,
                PostUpdate(actor="alice", text="Payments fail; we are on it."),
            )
        )
        await asyncio.sleep(1)  # admitted first, then resolved
        resolved = asyncio.create_task(
            handle.execute_update(
                IncidentWorkflow.resolve, Resolve(actor="alice", summary="rolled back")
            )
        )
        await asyncio.sleep(1)
        async with fake.worker(env.client, queue):
            await asyncio.gather(posted, resolved)

            async def told() -> IncidentState:
                s = await state(handle)
                assert len(s.updates) == 2  # alice's, and the resolution's own
                assert all(u.deliveries for u in s.updates), s.updates
                return s

            s = await eventually(told)
        assert s.status is IncidentStatus.RESOLVED
        assert s.war_room is None
        assert not fake.opened
        assert "comms_after_resolve" in [e.kind for e in s.timeline]
        for update in s.updates:
            channels = {d.audience: d.channel for d in update.deliveries if d.ok}
            assert channels[Audience.RESPONDERS] == "timeline", update.deliveries
            assert Audience.CUSTOMERS in channels, update.deliveries
        assert [p.status for p in fake.published] == [
            PublicStatus.INVESTIGATING,
            PublicStatus.RESOLVED,
        ]

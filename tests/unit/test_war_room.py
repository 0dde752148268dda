"""The war room against a loopback Slack and a webhook receiver: wire format, retries, dedup."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from temporalio.testing import ActivityEnvironment

from activities.http import PermanentHttpError, TransientHttpError
from activities.providers.slack_channels import (
    ChannelNamesExhausted,
    InvalidChannelName,
    SlackWarRooms,
    channel_name,
    normalise_channel_name,
    with_suffix,
)
from activities.providers.webhook import verify
from activities.providers.webhook_war_room import WebhookWarRooms
from activities.war_room import WarRoomActivities
from tests.fakes.server import RecordingServer, Reply
from tests.fakes.slack import BOT_USER, FakeSlack
from worker.config import FirelineConfig
from worker.war_room_config import (
    WarRoomConfig,
    invitees,
    slack_user_ids,
    user_for_slack_id,
    war_room_activities,
    war_room_problems,
)
from workflows.contracts import OpenWarRoom, WarRoom, WarRoomLinks, WarRoomPost
from workflows.severity import Severity

TOKEN = "xoxb-1111111111-2222222222-fakeTokenForTests"
WEBHOOK_SECRET = "whsec-war-room-test-secret"
DASHBOARD = "https://fireline.example.com/incidents/INC-12"
TEMPORAL_UI = "http://127.0.0.1:8233/namespaces/default/workflows/incident-INC-12"
BRIDGE = "https://meet.example.com/payments-bridge"
ALICE, BOB = "U0ALICE", "U0BOB"


def open_request(**changes: Any) -> OpenWarRoom:
    req = OpenWarRoom(
        incident_id="INC-12",
        title="Checkout: 5xx!",
        severity=Severity.SEV1,
        service="checkout",
        summary="Payments fail for EU customers.",
        commander="alice",
        invite=[ALICE, BOB],
        links=WarRoomLinks(dashboard=DASHBOARD, temporal_ui=TEMPORAL_UI, bridge=BRIDGE),
    )
    return req.model_copy(update=changes)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.5, trust_env=False) as http:
        yield http


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack([TOKEN], users=[ALICE, BOB]) as fake:
        yield fake


class Pacing:
    """A clock that only moves when told, and a sleep that records instead of waiting."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def rooms(
    client: httpx.AsyncClient, fake: FakeSlack, pacing: Pacing | None = None
) -> SlackWarRooms:
    pacing = pacing or Pacing()
    return SlackWarRooms(
        client=client,
        token=TOKEN,
        base_url=f"{fake.url}/api",
        clock=pacing.clock,
        sleep=pacing.sleep,
    )


def retry(env: ActivityEnvironment, attempt: int = 2) -> ActivityEnvironment:
    env.info = dataclasses.replace(env.info, attempt=attempt)
    return env


# --- names -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("INC-12 Checkout: 5xx!", "inc-12-checkout-5xx"),
        ("INC-7  Zürich DB__slow", "inc-7-zurich-db__slow"),
        ("--INC-3 (EU) payments--", "inc-3-eu-payments"),
        ("INC-4 " + "x" * 100, "inc-4-" + "x" * 74),
        ("INC-5 " + "a" * 73 + " tail", "inc-5-" + "a" * 73),
    ],
)
def test_names_are_normalised_to_slacks_rules(raw: str, expected: str) -> None:
    assert normalise_channel_name(raw) == expected
    assert len(expected) <= 80


@pytest.mark.parametrize("raw", ["", "!!!", "___ --- ___", "🔥🔥"])
def test_a_name_with_nothing_slack_accepts_is_refused_with_the_reason(raw: str) -> None:
    with pytest.raises(InvalidChannelName) as caught:
        normalise_channel_name(raw)
    assert caught.value.message == (
        f"channel name {raw!r} has no letters or digits Slack accepts "
        "(a channel name may only contain a-z, 0-9, '-' and '_')"
    )
    assert caught.value.non_retryable is True


def test_prefix_and_suffix_keep_the_name_within_80() -> None:
    assert channel_name("ir-", "INC-12", "Checkout: 5xx!") == "ir-inc-12-checkout-5xx"
    long = normalise_channel_name("INC-9 " + "y" * 100)
    assert with_suffix(long, 1) == long
    assert with_suffix(long, 12) == long[:77] + "-12"
    assert len(with_suffix(long, 12)) == 80


# --- open ------------------------------------------------------------------------------------


async def test_open_creates_invites_sets_the_topic_and_posts_the_summary(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    room = await ActivityEnvironment().run(
        WarRoomActivities(rooms(client, slack)).open, open_request()
    )

    channel = slack.room("inc-12-checkout-5xx")
    assert room == WarRoom(
        provider="slack",
        channel_id=channel.id,
        channel_name="inc-12-checkout-5xx",
        url=f"https://slack.com/app_redirect?channel={channel.id}",
        thread_ts=slack.messages[0].ts,
    )
    methods = [r.path.removeprefix("/api/") for r in slack.requests]
    assert methods == [
        "conversations.create",
        "conversations.invite",
        "conversations.invite",
        "conversations.setTopic",
        "chat.postMessage",
    ]
    create, invite_alice, invite_bob, set_topic, post = slack.requests
    assert create.header("authorization") == f"Bearer {TOKEN}"
    assert create.header("content-type") == "application/json; charset=utf-8"
    assert create.json() == {"name": "inc-12-checkout-5xx", "is_private": False}
    assert invite_alice.json() == {"channel": channel.id, "users": ALICE}
    assert invite_bob.json() == {"channel": channel.id, "users": BOB}
    assert channel.members == {BOT_USER, ALICE, BOB}
    assert set_topic.json() == {
        "channel": channel.id,
        "topic": "[INC-12] SEV1 · checkout · Checkout: 5xx! · commander: alice",
    }
    body = post.json()
    assert body["text"] == "[SEV1] INC-12: Checkout: 5xx! (checkout)"
    assert body["metadata"] == {
        "event_type": "fireline_war_room",
        "event_payload": {"incident_id": "INC-12"},
    }
    assert body["unfurl_links"] is False
    [actions] = [b for b in body["blocks"] if b["type"] == "actions"]
    assert [(e["text"]["text"], e["url"]) for e in actions["elements"]] == [
        ("Dashboard", DASHBOARD),
        ("Temporal UI", TEMPORAL_UI),
        ("Conference bridge", BRIDGE),
    ]
    assert {
        "type": "section",
        "text": {"type": "plain_text", "text": "Payments fail for EU customers."},
    } in body["blocks"]


async def test_a_name_taken_by_someone_else_gets_a_suffix(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    slack.add_channel("inc-12-checkout-5xx", creator="U0SOMEONE", topic="lunch plans")
    # Ours once, but archived: its name is taken for good.
    slack.add_channel(
        "inc-12-checkout-5xx-2", creator=BOT_USER, topic="[INC-12] old", archived=True
    )

    room = await rooms(client, slack).open(open_request(invite=[]))

    assert room.channel_name == "inc-12-checkout-5xx-3"
    creates = [r.json()["name"] for r in slack.calls("conversations.create")]
    # One listing tells both taken names apart; no create is wasted on the archived one.
    assert creates == ["inc-12-checkout-5xx", "inc-12-checkout-5xx-3"]
    [listing] = slack.calls("conversations.list")
    assert listing.method == "GET"
    assert listing.query["exclude_archived"] == ["false"]
    assert len(slack.calls("auth.test")) == 1


async def test_name_taken_by_our_own_earlier_attempt_is_reused(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    # The create went through, its answer was lost (a reset after Slack acted).
    slack.reset_next(process=True)
    provider = rooms(client, slack)
    with pytest.raises(TransientHttpError):
        await provider.open(open_request())

    room = await provider.open(open_request())

    assert [r.name for r in slack.rooms.values()] == ["inc-12-checkout-5xx"]
    assert room.channel_name == "inc-12-checkout-5xx"
    assert slack.room("inc-12-checkout-5xx").members == {BOT_USER, ALICE, BOB}
    assert len(slack.messages) == 1


async def test_a_retried_open_after_everything_went_through_changes_nothing(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    provider = rooms(client, slack)
    first = await provider.open(open_request())
    before = len(slack.requests)

    second = await provider.open(open_request())

    assert second == first
    assert len(slack.messages) == 1
    again = [r.path.removeprefix("/api/") for r in slack.requests[before:]]
    # Invites answer already_in_channel; the topic is already right; the summary is found.
    assert again == [
        "conversations.create",
        "conversations.list",
        "auth.test",
        "conversations.invite",
        "conversations.invite",
        "conversations.history",
    ]
    [history] = slack.calls("conversations.history")
    assert history.query["include_all_metadata"] == ["true"]


async def test_someone_who_cannot_be_invited_does_not_stop_the_room(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    room = await rooms(client, slack).open(open_request(invite=[ALICE, "U0NOBODY"]))

    assert room.thread_ts is not None
    [summary] = slack.messages
    [context] = [b for b in summary.blocks if b["type"] == "context"]
    assert context["elements"][-1]["text"] == "Could not invite: <@U0NOBODY> (user_not_found)"


async def test_every_suffix_taken_is_a_permanent_error(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    slack.add_channel("inc-12-checkout-5xx")
    for n in range(2, 21):
        slack.add_channel(f"inc-12-checkout-5xx-{n}")
    with pytest.raises(ChannelNamesExhausted) as caught:
        await rooms(client, slack).open(open_request())
    assert caught.value.message == (
        "slack: channel names inc-12-checkout-5xx to inc-12-checkout-5xx-20 are all taken "
        "by channels that are not INC-12's"
    )
    assert caught.value.non_retryable is True


async def test_an_unusable_name_is_refused_before_calling_slack(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    with pytest.raises(InvalidChannelName):
        await ActivityEnvironment().run(
            WarRoomActivities(rooms(client, slack)).open,
            open_request(incident_id="", title="🔥 !!!"),
        )
    assert slack.requests == []


async def test_slack_refusing_a_name_is_permanent(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    slack.error_next("restricted_action")
    with pytest.raises(PermanentHttpError) as caught:
        await rooms(client, slack).open(open_request())
    assert (
        caught.value.message == "slack answered HTTP 200: conversations.create: restricted_action"
    )


# --- rate limits and server errors -----------------------------------------------------------


async def test_429_retry_after_becomes_the_next_retry_delay(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    slack.ratelimit_next(retry_after="7")
    with pytest.raises(TransientHttpError) as caught:
        await ActivityEnvironment().run(
            WarRoomActivities(rooms(client, slack)).open, open_request()
        )
    assert caught.value.message == "slack answered HTTP 429: ratelimited (retry after 7s)"
    assert caught.value.next_retry_delay == timedelta(seconds=7)
    assert caught.value.non_retryable is False


async def test_ratelimited_inside_a_200_is_transient_too(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    room = await rooms(client, slack).open(open_request(invite=[]))
    slack.error_next("ratelimited", retry_after="3")
    with pytest.raises(TransientHttpError) as caught:
        await rooms(client, slack).post(post_request(room, "e1"))
    assert caught.value.message == (
        "slack answered HTTP 200: chat.postMessage: ratelimited (retry after 3s)"
    )
    assert caught.value.next_retry_delay == timedelta(seconds=3)


async def test_5xx_is_retryable_and_the_retry_completes(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    slack.fail_next(1, 503)
    provider = rooms(client, slack)
    with pytest.raises(TransientHttpError) as caught:
        await provider.open(open_request())
    assert caught.value.message == "slack answered HTTP 503: upstream connect error"
    room = await provider.open(open_request())
    assert room.channel_name == "inc-12-checkout-5xx"
    assert len(slack.rooms) == 1


# --- posts -----------------------------------------------------------------------------------


def post_request(room: WarRoom, entry_id: str, kind: str = "severity_changed") -> WarRoomPost:
    return WarRoomPost(
        incident_id="INC-12",
        room=room,
        entry_id=entry_id,
        kind=kind,
        text=f"alice raised severity SEV2 → SEV1 ({entry_id})",
    )


async def test_mirrored_entries_are_threaded_under_the_summary(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    activities = WarRoomActivities(rooms(client, slack))
    env = ActivityEnvironment()
    room = await env.run(activities.open, open_request(invite=[]))

    posted = await env.run(activities.post, post_request(room, "e1"))
    await env.run(activities.post, post_request(room, "e2", kind="mitigated"))

    assert posted.provider == "slack"
    assert posted.duplicate is False
    assert room.channel_id is not None
    assert room.thread_ts is not None
    thread = slack.thread(room.channel_id, room.thread_ts)
    assert [m.text for m in thread] == [
        "alice raised severity SEV2 → SEV1 (e1)",
        "alice raised severity SEV2 → SEV1 (e2)",
    ]
    assert posted.ts == thread[0].ts
    assert thread[1].metadata == {
        "event_type": "fireline_timeline_entry",
        "event_payload": {"incident_id": "INC-12", "entry_id": "e2", "kind": "mitigated"},
    }
    # A first attempt does not spend a call looking for itself.
    assert slack.calls("conversations.replies") == []


async def test_a_retried_post_that_already_went_through_is_not_repeated(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    activities = WarRoomActivities(rooms(client, slack))
    room = await ActivityEnvironment().run(activities.open, open_request(invite=[]))
    slack.reset_next(process=True)
    with pytest.raises(TransientHttpError):
        await ActivityEnvironment().run(activities.post, post_request(room, "e1"))

    again = await retry(ActivityEnvironment()).run(activities.post, post_request(room, "e1"))
    fresh = await retry(ActivityEnvironment()).run(activities.post, post_request(room, "e2"))

    assert room.channel_id is not None
    assert room.thread_ts is not None
    thread = slack.thread(room.channel_id, room.thread_ts)
    assert [m.metadata["event_payload"]["entry_id"] for m in thread if m.metadata] == ["e1", "e2"]
    assert (again.duplicate, again.ts) == (True, thread[0].ts)
    assert fresh.duplicate is False
    [lookup, _] = slack.calls("conversations.replies")
    assert lookup.method == "GET"
    assert lookup.query["ts"] == [room.thread_ts]
    assert lookup.query["include_all_metadata"] == ["true"]


async def test_posts_to_one_channel_are_paced_one_per_second(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    pacing = Pacing()
    provider = rooms(client, slack, pacing)
    room = await provider.open(open_request(invite=[]))
    other = await provider.open(open_request(incident_id="INC-13", invite=[]))
    # The summaries were posted at t=100 to two channels: neither waited.
    assert pacing.slept == []

    await provider.post(post_request(room, "e1"))
    pacing.now += 0.25
    await provider.post(post_request(room, "e2"))
    await provider.post(post_request(other, "e3"))

    # e1 waits for the summary's second to end; e2 queues one second after e1.
    assert pacing.slept == [1.0, 1.75, 0.75]


async def test_a_post_to_a_room_of_another_provider_is_refused(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    room = WarRoom(provider="webhook", thread_ts="INC-12")
    with pytest.raises(PermanentHttpError) as caught:
        await rooms(client, slack).post(post_request(room, "e1"))
    assert caught.value.message == "slack: war room webhook:- is not a Slack channel"


# --- webhook ---------------------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    with RecordingServer(Reply(200, {"ok": True, "url": "https://chat.example.com/r/inc-12"})) as r:
        yield r


def webhook(client: httpx.AsyncClient, url: str) -> WebhookWarRooms:
    return WebhookWarRooms(
        client=client, url=url, secret=WEBHOOK_SECRET, clock=lambda: 1764300000.5
    )


async def test_webhook_room_posts_signed_idempotent_events(
    client: httpx.AsyncClient, receiver: RecordingServer
) -> None:
    activities = WarRoomActivities(webhook(client, f"{receiver.url}/hooks/war-room"))
    env = ActivityEnvironment()
    room = await env.run(activities.open, open_request())
    posted = await env.run(activities.post, post_request(room, "e1", kind="mitigated"))

    assert room == WarRoom(
        provider="webhook", url="https://chat.example.com/r/inc-12", thread_ts="INC-12"
    )
    assert posted.provider == "webhook"
    opened, entry = receiver.requests
    assert (opened.method, opened.path) == ("POST", "/hooks/war-room")
    assert opened.header("idempotency-key") == "INC-12:war-room"
    assert entry.header("idempotency-key") == "INC-12:e1"
    for request in (opened, entry):
        assert verify(WEBHOOK_SECRET, request.body, request.header("x-fireline-signature") or "")
        assert request.header("x-fireline-timestamp") == "1764300000"
    assert opened.json() == {
        "version": 1,
        "event": "war_room.open",
        "timestamp": 1764300000,
        "incident_id": "INC-12",
        "thread_key": "INC-12",
        "kind": "war_room_opened",
        "text": "[SEV1] INC-12: Checkout: 5xx! (checkout)",
        "title": "Checkout: 5xx!",
        "severity": "SEV1",
        "service": "checkout",
        "summary": "Payments fail for EU customers.",
        "commander": "alice",
        "invite": [ALICE, BOB],
        "links": {"dashboard": DASHBOARD, "temporal_ui": TEMPORAL_UI, "bridge": BRIDGE},
    }
    assert entry.json() == {
        "version": 1,
        "event": "war_room.post",
        "timestamp": 1764300000,
        "incident_id": "INC-12",
        "thread_key": "INC-12",
        "entry_id": "e1",
        "kind": "mitigated",
        "text": "alice raised severity SEV2 → SEV1 (e1)",
    }


async def test_webhook_retry_sends_the_same_idempotency_key(
    client: httpx.AsyncClient, receiver: RecordingServer
) -> None:
    provider = webhook(client, receiver.url)
    room = WarRoom(provider="webhook", thread_ts="INC-12")
    receiver.fail_next(1, 502)
    with pytest.raises(TransientHttpError):
        await provider.post(post_request(room, "e7"))
    await provider.post(post_request(room, "e7"), retried=True)
    keys = [r.header("idempotency-key") for r in receiver.requests]
    assert keys == ["INC-12:e7", "INC-12:e7"]


async def test_webhook_4xx_is_permanent(
    client: httpx.AsyncClient, receiver: RecordingServer
) -> None:
    receiver.reply = Reply(400, {"message": "unknown thread"})
    with pytest.raises(PermanentHttpError) as caught:
        await webhook(client, receiver.url).open(open_request())
    assert caught.value.message == "chat webhook answered HTTP 400: unknown thread"


# --- config ----------------------------------------------------------------------------------


def fireline_config() -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice", "email": "alice@example.com", "slack": ALICE},
                "bob": {
                    "name": "Bob",
                    "email": "bob@example.com",
                    "slack": "@bob",
                    "contact_methods": [{"kind": "slack", "address": BOB}],
                },
                "carol": {"name": "Carol", "email": "carol@example.com", "slack": "@carol"},
            },
            "teams": {"payments": {"members": ["alice", "bob"]}},
        }
    )


def test_users_map_to_slack_ids_from_their_slack_field_or_contact_method() -> None:
    users = fireline_config().users
    assert slack_user_ids(users) == {"alice": ALICE, "bob": BOB}
    assert invitees(users, ["carol", "bob", "alice", "bob"]) == [BOB, ALICE]
    assert user_for_slack_id(users, BOB) == "bob"
    assert user_for_slack_id(users, "U0STRANGER") is None


def test_war_room_config_defaults_and_bridge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FIRELINE_TEST_SLACK_TOKEN", TOKEN)
    config = WarRoomConfig.model_validate(
        {
            "provider": "slack",
            "slack": {"token": {"env": "FIRELINE_TEST_SLACK_TOKEN"}},
            "bridge": {
                "default": "https://meet.example.com/incident",
                "teams": {"payments": BRIDGE},
            },
        }
    )
    assert config.opens_for(Severity.SEV2)
    assert not config.opens_for(Severity.SEV3)
    assert config.mirrors("runbook_approval_requested")
    assert not config.mirrors("note")
    assert config.bridge_for("payments") == BRIDGE
    assert config.bridge_for("search") == "https://meet.example.com/incident"
    assert config.links("payments", dashboard=DASHBOARD, temporal_ui=None) == WarRoomLinks(
        dashboard=DASHBOARD, bridge=BRIDGE
    )
    assert war_room_problems(config, fireline_config().teams, fireline_config().users) == []
    assert config.secret_problems() == []
    assert isinstance(war_room_activities(config, httpx.AsyncClient()), WarRoomActivities)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"provider": "slack"}, "provider slack needs a slack: section (token)"),
        (
            {"provider": "webhook", "webhook": {"url": "ftp://x", "secret": {"env": "X"}}},
            "webhook.url",
        ),
        (
            {"provider": "slack", "slack": {"token": {"sha256": "0" * 64}}},
            "give env or file: fireline must send this secret, not just check it",
        ),
        (
            {
                "provider": "webhook",
                "webhook": {"url": "https://x", "secret": {"env": "X"}},
                "channel_prefix": "IR ",
            },
            "channel_prefix",
        ),
    ],
)
def test_bad_war_room_config_names_the_field(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WarRoomConfig.model_validate(section)
    assert message in str(caught.value)


def test_cross_config_problems_name_the_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIRELINE_TEST_UNSET", raising=False)
    config = WarRoomConfig.model_validate(
        {
            "provider": "slack",
            "slack": {"token": {"env": "FIRELINE_TEST_UNSET"}},
            "bridge": {"teams": {"platform": BRIDGE}},
        }
    )
    base = fireline_config()
    users = {**base.users, "carol": base.users["carol"].model_copy(update={"slack": ALICE})}
    assert war_room_problems(config, base.teams, users) == [
        "war_room.bridge.teams.platform: unknown team 'platform'",
        f"users.carol: Slack id {ALICE} is also alice's; slash commands could not tell them apart",
    ]
    assert config.secret_problems() == [
        "war_room.slack.token: environment variable FIRELINE_TEST_UNSET is not set"
    ]

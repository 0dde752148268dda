"""``/fireline note`` from Slack, against the real dev server and a real IncidentWorkflow."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from temporalio.client import Client

from tests.fakes.server import RecordingServer
from tests.support import eventually
from worker.config import FirelineConfig
from worker.incident_service import DeclareRequest, IncidentService
from worker.runner import build_worker
from worker.slack_commands import (
    HELP,
    incident_from_channel,
    parse_note,
    slack_command_router,
    verification_problem,
)
from workflows.contracts import Close, Resolve, Severity

pytestmark = pytest.mark.integration

TASK_QUEUE = "fireline-slack-command-tests"
SECRET = b"8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1_764_300_000
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"


def config() -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com", "slack": ALICE},
                "bob": {
                    "name": "Bob Example",
                    "email": "bob@example.com",
                    "contact_methods": [{"kind": "slack", "address": BOB}],
                },
            },
            "services": {"checkout": {}},
        }
    )


@dataclass
class Commands:
    service: IncidentService
    http: httpx.AsyncClient
    slow: httpx.AsyncClient
    # Stands in for Slack's response_url endpoint.
    hooks: RecordingServer

    async def declare(self) -> str:
        state = await self.service.declare(
            DeclareRequest(title="Checkout 5xx", service="checkout", severity=Severity.SEV1),
            "alice",
        )
        return state.id


def app(
    service: IncidentService,
    cfg: FirelineConfig,
    answer_within: float,
    outbound: httpx.AsyncClient,
    hooks: RecordingServer,
) -> httpx.AsyncClient:
    api = FastAPI()
    api.include_router(
        slack_command_router(
            service,
            cfg.users,
            SECRET,
            http=outbound,
            response_url_prefixes=[f"{hooks.url}/commands/"],
            now=lambda: NOW + 30,
            answer_within=answer_within,
        )
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=api), base_url="http://fireline")


@pytest.fixture(scope="module")
async def commands(dev_client: Client) -> AsyncIterator[Commands]:
    cfg = config()
    service = IncidentService(dev_client, cfg, TASK_QUEUE)
    with RecordingServer() as hooks:
        async with (
            httpx.AsyncClient(timeout=2.0, trust_env=False) as outbound,
            build_worker(dev_client, TASK_QUEUE),
            app(service, cfg, 2.5, outbound, hooks) as http,
            # Answers before any Update could finish: the note must still land.
            app(service, cfg, 0.0, outbound, hooks) as slow,
        ):
            yield Commands(service, http, slow, hooks)


def signed(
    fields: dict[str, str], *, timestamp: int = NOW, secret: bytes = SECRET
) -> dict[str, Any]:
    """A slash command as Slack sends it: form body, timestamp and v0 signature."""
    form = {
        "token": "deprecated-verification-token",
        "team_id": "T0FAKE",
        "team_domain": "example",
        "channel_id": "C1ROOM001",
        "channel_name": "general",
        "user_id": ALICE,
        "user_name": "alice",
        "command": "/fireline",
        "text": "",
        "api_app_id": "A0FIRELINE",
        "response_url": "https://hooks.slack.com/commands/T0FAKE/1/abc",
        "trigger_id": "1.2.abc",
        **fields,
    }
    body = urlencode(form).encode()
    base = f"v0:{timestamp}:".encode() + body
    digest = hmac.new(secret, base, hashlib.sha256).hexdigest()
    return {
        "content": body,
        "headers": {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": str(timestamp),
            "X-Slack-Signature": f"v0={digest}",
        },
    }


async def run(http: httpx.AsyncClient, **fields: str) -> dict[str, Any]:
    response = await http.post("/v1/slack/commands", **signed(fields))
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert answer["response_type"] == "ephemeral"
    return answer


def channel_of(incident_id: str) -> str:
    return f"{incident_id.lower()}-checkout-5xx"


# --- notes reach the timeline ----------------------------------------------------------------


async def test_a_note_in_the_incident_channel_reaches_the_timeline(commands: Commands) -> None:
    inc = await commands.declare()

    answer = await run(
        commands.http,
        text="note rolled back to 1.4.0, errors dropping",
        channel_name=channel_of(inc),
    )

    assert answer["text"] == f"Added to the {inc} timeline."
    last = (await commands.service.get(inc)).timeline[-1]
    assert (last.kind, last.actor, last.text) == (
        "note",
        "alice",
        "rolled back to 1.4.0, errors dropping",
    )


async def test_a_note_naming_the_incident_works_from_any_channel(commands: Commands) -> None:
    inc = await commands.declare()

    answer = await run(commands.http, text=f"note {inc.lower()} EU traffic drained", user_id=BOB)

    assert answer["text"] == f"Added to the {inc} timeline."
    last = (await commands.service.get(inc)).timeline[-1]
    assert (last.kind, last.actor, last.text) == ("note", "bob", "EU traffic drained")


async def test_a_slow_update_is_answered_at_once_and_still_lands(commands: Commands) -> None:
    inc = await commands.declare()

    response_url = f"{commands.hooks.url}/commands/T0FAKE/slow/{inc}"

    answer = await run(
        commands.slow,
        text="note slow path",
        channel_name=channel_of(inc),
        response_url=response_url,
    )

    assert answer["text"] == (
        f"Still recording the note on {inc}; "
        "it will be on the timeline as soon as Temporal answers."
    )

    async def landed() -> None:
        last = (await commands.service.get(inc)).timeline[-1]
        assert (last.kind, last.text) == ("note", "slow path")
        late = [r.json() for r in commands.hooks.requests if r.path.endswith(f"/slow/{inc}")]
        assert late == [{"response_type": "ephemeral", "text": f"Added to the {inc} timeline."}]

    await eventually(landed)


async def test_a_response_url_outside_slack_is_never_called(commands: Commands) -> None:
    inc = await commands.declare()

    await run(
        commands.slow,
        text="note elsewhere",
        channel_name=channel_of(inc),
        response_url=f"{commands.hooks.url}/not-slack/{inc}",
    )

    async def landed() -> None:
        last = (await commands.service.get(inc)).timeline[-1]
        assert (last.kind, last.text) == ("note", "elsewhere")

    await eventually(landed)
    assert not [r for r in commands.hooks.requests if r.path.endswith(f"/not-slack/{inc}")]


# --- the message shortcut --------------------------------------------------------------------


def shortcut(
    hooks: RecordingServer, key: str, channel: str, *, user: str = ALICE, author: str = BOB
) -> dict[str, Any]:
    """A message_action payload as Slack sends it (form field ``payload``, JSON)."""
    payload = {
        "type": "message_action",
        "callback_id": "fireline_note",
        "trigger_id": "1.2.abc",
        "action_ts": "1764300000.1",
        "team": {"id": "T0FAKE", "domain": "example"},
        "user": {"id": user, "name": "someone"},
        "channel": {"id": "C1ROOM001", "name": channel},
        "message": {
            "type": "message",
            "user": author,
            "ts": "1764299990.000100",
            "text": "EU drained",
        },
        "response_url": f"{hooks.url}/commands/T0FAKE/{key}",
    }
    return signed({"payload": json.dumps(payload)})


async def test_the_message_shortcut_puts_the_message_on_the_timeline(commands: Commands) -> None:
    inc = await commands.declare()

    response = await commands.http.post(
        "/v1/slack/interactions", **shortcut(commands.hooks, f"short-{inc}", channel_of(inc))
    )

    assert (response.status_code, response.content) == (200, b"")

    async def landed() -> None:
        last = (await commands.service.get(inc)).timeline[-1]
        assert (last.kind, last.actor, last.text) == ("note", "alice", "bob in Slack: EU drained")
        told = [r.json() for r in commands.hooks.requests if r.path.endswith(f"/short-{inc}")]
        assert [t["text"] for t in told] == [f"Added to the {inc} timeline."]

    await eventually(landed)


async def test_the_shortcut_outside_a_war_room_says_why(commands: Commands) -> None:
    response = await commands.http.post(
        "/v1/slack/interactions", **shortcut(commands.hooks, "short-general", "general")
    )
    assert response.status_code == 200

    async def told() -> None:
        replies = [r.json() for r in commands.hooks.requests if r.path.endswith("/short-general")]
        assert replies == [
            {
                "response_type": "ephemeral",
                "text": "Not added: this channel is not an incident's war room "
                "(its name does not carry an incident id such as inc-12).",
            }
        ]

    await eventually(told)


async def test_an_unknown_interaction_is_a_400_with_the_reason(commands: Commands) -> None:
    body = signed({"payload": json.dumps({"type": "block_actions", "actions": []})})
    response = await commands.http.post("/v1/slack/interactions", **body)
    assert response.status_code == 400
    assert response.json() == {
        "error": "bad_request",
        "reason": "not a fireline message shortcut payload",
    }


# --- refusals are messages, not errors -------------------------------------------------------


async def test_an_unlinked_slack_user_is_told_how_to_link(commands: Commands) -> None:
    inc = await commands.declare()
    before = len((await commands.service.get(inc)).timeline)

    answer = await run(
        commands.http, text="note hello", channel_name=channel_of(inc), user_id=CAROL
    )

    assert answer["text"] == (
        f"Your Slack user {CAROL} is not linked to a fireline user: "
        f"set `slack: {CAROL}` on your user in fireline.yaml."
    )
    assert len((await commands.service.get(inc)).timeline) == before


async def test_an_unknown_incident_is_named(commands: Commands) -> None:
    answer = await run(commands.http, text="note INC-999999 hello")
    assert answer["text"] == "Not added to INC-999999: no incident INC-999999"


async def test_a_note_on_a_closed_incident_is_refused_with_the_reason(commands: Commands) -> None:
    inc = await commands.declare()
    service = commands.service
    await service.act(inc, "resolve", Resolve(actor="alice", summary="fixed"), actor="alice")
    await service.act(inc, "close", Close(actor="alice"), actor="alice")

    answer = await run(commands.http, text="note too late", channel_name=channel_of(inc))

    assert answer["text"] == f"Not added to {inc}: {inc} is closed"


@pytest.mark.parametrize(
    ("text", "channel", "expected"),
    [
        (
            "note forgot which",
            "general",
            "Not added: say which incident: `/fireline note INC-12 <text>`, "
            "or run it in the incident's channel.",
        ),
        (
            "note",
            "inc-12-checkout",
            "Not added: a note needs text: `/fireline note INC-12 <text>`.",
        ),
        (
            "note INC-12   ",
            "general",
            "Not added: a note needs text: `/fireline note INC-12 <text>`.",
        ),
        (
            "note " + "x" * 20_001,
            "inc-12-checkout",
            "Not added: the note is not valid (String should have at most 20000 characters).",
        ),
        ("help", "general", HELP),
        ("", "general", HELP),
        ("page bob", "general", f"Unknown command `page`.\n{HELP}"),
    ],
)
async def test_bad_commands_are_answered_with_the_reason(
    commands: Commands, text: str, channel: str, expected: str
) -> None:
    answer = await run(commands.http, text=text, channel_name=channel)
    assert answer["text"] == expected


# --- request verification --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_kwargs", "reason"),
    [
        (
            signed({"text": "note hi"}, secret=b"not-the-secret"),
            "X-Slack-Signature does not match the request (wrong signing secret?)",
        ),
        (
            signed({"text": "note hi"}, timestamp=NOW - 301),
            "X-Slack-Request-Timestamp is more than 5 minutes from now (a replayed request?)",
        ),
        (
            {
                "content": b"text=note+hi",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
            "X-Slack-Request-Timestamp and X-Slack-Signature headers are required",
        ),
        (
            {
                "content": b"text=note+hi",
                "headers": {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
            },
            "X-Slack-Request-Timestamp is not a number of seconds",
        ),
    ],
)
async def test_unverified_requests_are_refused_with_the_reason(
    commands: Commands, request_kwargs: dict[str, Any], reason: str
) -> None:
    response = await commands.http.post("/v1/slack/commands", **request_kwargs)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized", "reason": reason}


async def test_a_tampered_body_is_refused(commands: Commands) -> None:
    request = signed({"text": "note hi"})
    request["content"] = request["content"].replace(b"note+hi", b"note+bye")
    response = await commands.http.post("/v1/slack/commands", **request)
    assert response.status_code == 401


def test_verification_accepts_slacks_documented_shape() -> None:
    body = b"token=x&text=note+hi"
    timestamp = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET, f"v0:{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    headers = {"x-slack-request-timestamp": timestamp, "x-slack-signature": sig}
    assert verification_problem(SECRET, headers, body, float(timestamp) + 299) is None


@pytest.mark.parametrize(
    ("channel", "incident"),
    [
        ("inc-12-checkout-5xx", "INC-12"),
        ("ir-inc-7", "INC-7"),
        ("inc-12-checkout-5xx-2", "INC-12"),
        ("incident-review", None),
        ("since-12", None),
        ("general", None),
    ],
)
def test_incident_from_channel_name(channel: str, incident: str | None) -> None:
    assert incident_from_channel(channel) == incident


def test_parse_note_prefers_an_explicit_id() -> None:
    assert parse_note(" INC-9 db failover done", "inc-12-checkout") == ("INC-9", "db failover done")
    assert parse_note("inc-12 wait", "general") == ("INC-12", "wait")

"""Notification providers against loopback vendor fakes: exact wire format, errors, dedup."""

from __future__ import annotations

import asyncio
import json
import smtplib
import ssl
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.contracts import (
    ContactKind,
    ContactMethod,
    Link,
    Page,
    PageAction,
    PageResult,
    PageSeverity,
    ResponderType,
    Urgency,
)
from activities.http import PermanentHttpError, TransientHttpError
from activities.notify import Notifier, NotifyActivities, ProviderNotConfigured
from activities.providers.console import ConsoleNotifier, read_inbox
from activities.providers.email_smtp import (
    EmailNotifier,
    PermanentSmtpError,
    TransientSmtpError,
    build_message,
    classify_smtp_error,
    message_id,
)
from activities.providers.opsgenie import OpsgenieNotifier, priority
from activities.providers.pagerduty import PagerDutyNotifier
from activities.providers.slack import SlackNotifier, is_transient_error
from activities.providers.webhook import WebhookNotifier, sign, verify
from tests.fakes.opsgenie import FakeOpsgenie
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.server import RecordingServer, Reply
from tests.fakes.slack import FakeSlack
from tests.support import free_port

# Fictional credentials, shaped like the real ones.
ROUTING_KEY = "0123456789abcdef0123456789abcdef"
GENIE_KEY = "6f1c2d9e-8a41-4d7b-9c3e-5b2a7e0f4c11"
SLACK_TOKEN = "xoxb-1111111111-2222222222-fakeTokenForTests"
WEBHOOK_SECRET = "whsec-fireline-test-secret"
ACK_URL = "https://fireline.example.com/v1/ack/tok-123"
RUNBOOK = "https://runbooks.example.com/checkout"
DEDUP = "INC-7:L1:A1"

# Loading the CA bundle costs ~0.1 s; one context serves every test client.
_TLS = ssl.create_default_context()


def make_page(kind: ContactKind, address: str = "", **changes: Any) -> Page:
    """A SEV1 page for Alice about checkout; ``changes`` override fields."""
    page = Page(
        dedup_key=DEDUP,
        incident_id="INC-7",
        title="Checkout error rate above 5%",
        summary="Payments fail for EU customers.",
        severity=PageSeverity.SEV1,
        recipient="alice",
        contact=ContactMethod(kind=kind, address=address),
        service="checkout",
        team="payments",
        ack_url=ACK_URL,
        links=[Link(href=RUNBOOK, text="Runbook")],
        details={"region": "eu-west-1"},
    )
    return page.model_copy(update=changes)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy from the environment must never see loopback test traffic.
    # Reads time out fast (the slow-vendor tests rely on it); connecting to loopback gets
    # longer, because a loaded CI machine can take more than half a second to accept.
    timeout = httpx.Timeout(0.5, connect=5.0)
    async with httpx.AsyncClient(timeout=timeout, trust_env=False, verify=_TLS) as http:
        yield http


@pytest.fixture
def pagerduty() -> Iterator[FakePagerDuty]:
    with FakePagerDuty([ROUTING_KEY]) as fake:
        yield fake


@pytest.fixture
def opsgenie() -> Iterator[FakeOpsgenie]:
    with FakeOpsgenie([GENIE_KEY]) as fake:
        yield fake


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(
        [SLACK_TOKEN], channels=["C0INCIDENTS"], other_channels=["C0PRIVATE"], users=["U0ALICE"]
    ) as fake:
        yield fake


@pytest.fixture
def receiver() -> Iterator[RecordingServer]:
    with RecordingServer(Reply(204)) as fake:
        yield fake


def pd_notifier(
    client: httpx.AsyncClient, fake: FakePagerDuty, key: str = ROUTING_KEY
) -> PagerDutyNotifier:
    return PagerDutyNotifier(
        client=client,
        routing_keys={"default": key},
        base_url=fake.url,
        client_url="https://fireline.example.com",
    )


def og_notifier(client: httpx.AsyncClient, url: str, key: str = GENIE_KEY) -> OpsgenieNotifier:
    return OpsgenieNotifier(client=client, api_key=key, base_url=url)


def slack_notifier(client: httpx.AsyncClient, url: str, token: str = SLACK_TOKEN) -> SlackNotifier:
    return SlackNotifier(client=client, token=token, base_url=f"{url}/api")


# --- PagerDuty -------------------------------------------------------------------------------


async def test_pagerduty_trigger_sends_the_exact_event(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty
) -> None:
    result = await pd_notifier(client, pagerduty).notify(make_page(ContactKind.PAGERDUTY))

    [request] = pagerduty.requests
    assert (request.method, request.path, request.query) == ("POST", "/v2/enqueue", {})
    assert request.header("content-type") == "application/json"
    assert request.json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": DEDUP,
        "payload": {
            "summary": "[SEV1] INC-7: Checkout error rate above 5%",
            "source": "checkout",
            "severity": "critical",
            "class": "incident",
            "custom_details": {
                "incident_id": "INC-7",
                "summary": "Payments fail for EU customers.",
                "recipient": "alice",
                "urgency": "high",
                "region": "eu-west-1",
            },
            "component": "checkout",
            "group": "payments",
        },
        "links": [
            {"href": ACK_URL, "text": "Acknowledge"},
            {"href": RUNBOOK, "text": "Runbook"},
        ],
        "client": "fireline",
        "client_url": "https://fireline.example.com",
    }
    assert result == PageResult(
        provider=ContactKind.PAGERDUTY,
        delivered=True,
        external_id=DEDUP,
        detail="Event processed",
        action=PageAction.TRIGGER,
        dedup_key=DEDUP,
    )
    alert = pagerduty.alert(DEDUP)
    assert alert is not None
    assert (alert.status, alert.severity) == ("triggered", "critical")


async def test_pagerduty_acknowledge_and_resolve_close_the_loop(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty
) -> None:
    notifier = pd_notifier(client, pagerduty)
    await notifier.notify(make_page(ContactKind.PAGERDUTY))
    await notifier.notify(make_page(ContactKind.PAGERDUTY, action=PageAction.ACKNOWLEDGE))
    alert = pagerduty.alert(DEDUP)
    assert alert is not None
    assert alert.status == "acknowledged"
    result = await notifier.notify(make_page(ContactKind.PAGERDUTY, action=PageAction.RESOLVE))

    assert [r.json() for r in pagerduty.requests[1:]] == [
        {"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": DEDUP},
        {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": DEDUP},
    ]
    assert alert.status == "resolved"
    assert (result.action, result.external_id) == (PageAction.RESOLVE, DEDUP)


async def test_pagerduty_retry_after_a_lost_answer_pages_once(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty
) -> None:
    notifier = pd_notifier(client, pagerduty)
    # PagerDuty opened the alert, then the connection died before the 202 arrived.
    pagerduty.reset_next(process=True)
    with pytest.raises(TransientHttpError):
        await notifier.notify(make_page(ContactKind.PAGERDUTY))
    await notifier.notify(make_page(ContactKind.PAGERDUTY))

    assert len(pagerduty.requests) == 2
    assert len(pagerduty.alerts) == 1
    assert len(pagerduty.alerts[0].events) == 2


async def test_pagerduty_timeout_then_retry_pages_once(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty
) -> None:
    notifier = pd_notifier(client, pagerduty)
    pagerduty.slow_next(delay=0.7)
    with pytest.raises(TransientHttpError) as caught:
        await notifier.notify(make_page(ContactKind.PAGERDUTY))
    assert caught.value.message == "pagerduty timed out: ReadTimeout"
    await notifier.notify(make_page(ContactKind.PAGERDUTY))
    # The slow original lands after the retry and joins the same alert.
    for _ in range(50):
        if len(pagerduty.alerts[0].events) == 2:
            break
        await asyncio.sleep(0.02)
    assert len(pagerduty.alerts) == 1
    assert len(pagerduty.alerts[0].events) == 2


async def test_pagerduty_rate_limit_is_transient_with_retry_after(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty
) -> None:
    pagerduty.fail_next(1, 429, retry_after="30")
    with pytest.raises(TransientHttpError) as caught:
        await pd_notifier(client, pagerduty).notify(make_page(ContactKind.PAGERDUTY))
    assert caught.value.message == (
        "pagerduty answered HTTP 429: Requests for this service are arriving too quickly. "
        "Please retry later. (retry after 30s)"
    )
    assert caught.value.next_retry_delay == timedelta(seconds=30)
    assert pagerduty.alerts == []


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_pagerduty_server_errors_are_transient(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty, status: int
) -> None:
    pagerduty.fail_next(1, status)
    with pytest.raises(TransientHttpError) as caught:
        await pd_notifier(client, pagerduty).notify(make_page(ContactKind.PAGERDUTY))
    assert caught.value.message == f"pagerduty answered HTTP {status}: Internal Server Error"


async def test_pagerduty_invalid_routing_key_is_permanent(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty
) -> None:
    short_key = ROUTING_KEY[:-1]
    with pytest.raises(PermanentHttpError) as caught:
        await pd_notifier(client, pagerduty, short_key).notify(make_page(ContactKind.PAGERDUTY))
    assert caught.value.message == (
        "pagerduty answered HTTP 400: Event object is invalid - "
        "Length of 'routing_key' is incorrect (should be 32 characters)"
    )
    assert caught.value.non_retryable is True


async def test_pagerduty_unknown_routing_key_name_is_permanent(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty
) -> None:
    page = make_page(ContactKind.PAGERDUTY, address="database-team")
    with pytest.raises(PermanentHttpError) as caught:
        await pd_notifier(client, pagerduty).notify(page)
    assert caught.value.message == "pagerduty: no routing key named 'database-team' is configured"
    assert pagerduty.requests == []


@pytest.mark.parametrize(
    ("event", "errors"),
    [
        (
            {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedupKey": "x"},
            ["Unknown field 'dedupKey'", "'payload' is missing or blank"],
        ),
        (
            {"routing_key": ROUTING_KEY, "event_action": "resolve"},
            ["'dedup_key' is missing or blank"],
        ),
        (
            {
                "routing_key": ROUTING_KEY,
                "event_action": "trigger",
                "payload": {"summary": "s", "source": "h", "severity": "high"},
            },
            ["'payload.severity' is invalid (must be one of critical, error, warning, info)"],
        ),
        (
            {"routing_key": "f" * 32, "event_action": "fire", "dedup_key": "k"},
            [
                "Invalid routing key",
                "'event_action' is invalid (must be one of trigger, acknowledge, resolve)",
            ],
        ),
    ],
)
async def test_fake_pagerduty_rejects_a_wrong_wire_format(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty, event: dict[str, Any], errors: list[str]
) -> None:
    response = await client.post(f"{pagerduty.url}/v2/enqueue", json=event)
    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": errors,
    }


# --- Opsgenie --------------------------------------------------------------------------------


async def test_opsgenie_create_sends_the_exact_alert(
    client: httpx.AsyncClient, opsgenie: FakeOpsgenie
) -> None:
    page = make_page(ContactKind.OPSGENIE, address="alice@example.com")
    result = await og_notifier(client, opsgenie.url).notify(page)

    [request] = opsgenie.requests
    assert (request.method, request.path, request.query) == ("POST", "/v2/alerts", {})
    assert request.header("authorization") == f"GenieKey {GENIE_KEY}"
    assert request.header("content-type") == "application/json"
    assert request.json() == {
        "message": "[SEV1] Checkout error rate above 5%",
        "alias": DEDUP,
        "description": f"Payments fail for EU customers.\n\nRunbook: {RUNBOOK}",
        "responders": [{"username": "alice@example.com", "type": "user"}],
        "priority": "P1",
        "details": {
            "incident_id": "INC-7",
            "recipient": "alice",
            "urgency": "high",
            "region": "eu-west-1",
            "ack_url": ACK_URL,
        },
        "source": "fireline",
        "tags": ["fireline", "INC-7", "SEV1"],
        "entity": "checkout",
    }
    assert result.external_id == DEDUP
    assert result.detail.startswith("Request will be processed (requestId ")
    alert = opsgenie.alert(DEDUP)
    assert alert is not None
    assert (alert.status, alert.acknowledged, alert.priority) == ("open", False, "P1")


async def test_opsgenie_acknowledge_and_close_address_the_alias(
    client: httpx.AsyncClient, opsgenie: FakeOpsgenie
) -> None:
    notifier = og_notifier(client, opsgenie.url)
    await notifier.notify(make_page(ContactKind.OPSGENIE, address="alice@example.com"))
    ack = make_page(ContactKind.OPSGENIE, action=PageAction.ACKNOWLEDGE, actor="bob")
    await notifier.notify(ack)
    await notifier.notify(make_page(ContactKind.OPSGENIE, action=PageAction.RESOLVE))

    acknowledge, close = opsgenie.requests[1:]
    assert (acknowledge.path, acknowledge.query) == (
        "/v2/alerts/INC-7%3AL1%3AA1/acknowledge",
        {"identifierType": ["alias"]},
    )
    assert acknowledge.header("authorization") == f"GenieKey {GENIE_KEY}"
    assert acknowledge.json() == {
        "source": "fireline",
        "note": "acknowledged in fireline by bob",
        "user": "bob",
    }
    assert close.path == "/v2/alerts/INC-7%3AL1%3AA1/close"
    assert close.json() == {"source": "fireline", "note": "closed in fireline", "user": "fireline"}
    alert = opsgenie.alert(DEDUP)
    assert alert is not None
    assert (alert.acknowledged, alert.status) == (True, "closed")
    assert set(opsgenie.request_status.values()) == {"Success"}


async def test_opsgenie_duplicate_create_raises_the_count_not_a_new_alert(
    client: httpx.AsyncClient, opsgenie: FakeOpsgenie
) -> None:
    notifier = og_notifier(client, opsgenie.url)
    opsgenie.reset_next(process=True)
    with pytest.raises(TransientHttpError):
        await notifier.notify(make_page(ContactKind.OPSGENIE, address="alice@example.com"))
    await notifier.notify(make_page(ContactKind.OPSGENIE, address="alice@example.com"))
    assert len(opsgenie.alerts) == 1
    assert opsgenie.alerts[0].count == 2


async def test_opsgenie_team_responder_and_long_title(
    client: httpx.AsyncClient, opsgenie: FakeOpsgenie
) -> None:
    page = make_page(ContactKind.OPSGENIE, title="x" * 200, urgency=Urgency.LOW)
    page = page.model_copy(
        update={
            "contact": ContactMethod(
                kind=ContactKind.OPSGENIE,
                address="payments-oncall",
                responder_type=ResponderType.TEAM,
            )
        }
    )
    await og_notifier(client, opsgenie.url).notify(page)
    body = opsgenie.requests[0].json()
    assert body["message"] == ("[SEV1] " + "x" * 200)[:130]
    assert len(body["message"]) == 130
    assert body["responders"] == [{"name": "payments-oncall", "type": "team"}]
    assert body["priority"] == "P2"


@pytest.mark.parametrize(
    ("severity", "urgency", "expected"),
    [
        (PageSeverity.SEV1, Urgency.HIGH, "P1"),
        (PageSeverity.SEV2, Urgency.HIGH, "P2"),
        (PageSeverity.SEV3, Urgency.HIGH, "P3"),
        (PageSeverity.SEV4, Urgency.HIGH, "P4"),
        (PageSeverity.SEV1, Urgency.LOW, "P2"),
        (PageSeverity.SEV4, Urgency.LOW, "P5"),
    ],
)
def test_opsgenie_priority(severity: PageSeverity, urgency: Urgency, expected: str) -> None:
    assert priority(severity, urgency) == expected


async def test_opsgenie_bad_key_is_permanent(
    client: httpx.AsyncClient, opsgenie: FakeOpsgenie
) -> None:
    wrong = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(PermanentHttpError) as caught:
        await og_notifier(client, opsgenie.url, wrong).notify(make_page(ContactKind.OPSGENIE))
    assert caught.value.message == "opsgenie answered HTTP 401: Could not authenticate"
    assert opsgenie.alerts == []


async def test_opsgenie_rate_limit_is_transient(
    client: httpx.AsyncClient, opsgenie: FakeOpsgenie
) -> None:
    opsgenie.fail_next(1, 429, retry_after="4")
    with pytest.raises(TransientHttpError) as caught:
        await og_notifier(client, opsgenie.url).notify(make_page(ContactKind.OPSGENIE))
    assert caught.value.message == "opsgenie answered HTTP 429: Too many requests (retry after 4s)"
    assert caught.value.next_retry_delay == timedelta(seconds=4)


@pytest.mark.parametrize(
    ("headers", "path", "status", "message"),
    [
        ({"Authorization": f"Bearer {GENIE_KEY}"}, "/v2/alerts", 401, "Could not authenticate"),
        (
            {"Authorization": f"GenieKey {GENIE_KEY}"},
            "/v2/alert",
            404,
            "Could not find handler for the request",
        ),
    ],
)
async def test_fake_opsgenie_checks_auth_form_and_path(
    client: httpx.AsyncClient,
    opsgenie: FakeOpsgenie,
    headers: dict[str, str],
    path: str,
    status: int,
    message: str,
) -> None:
    response = await client.post(f"{opsgenie.url}{path}", json={"message": "m"}, headers=headers)
    assert response.status_code == status
    assert response.json()["message"] == message


async def test_fake_opsgenie_acknowledge_without_identifier_type_finds_nothing(
    client: httpx.AsyncClient, opsgenie: FakeOpsgenie
) -> None:
    await og_notifier(client, opsgenie.url).notify(make_page(ContactKind.OPSGENIE))
    response = await client.post(
        f"{opsgenie.url}/v2/alerts/{DEDUP}/acknowledge",
        json={},
        headers={"Authorization": f"GenieKey {GENIE_KEY}"},
    )
    # Accepted (asynchronous), but the id lookup fails: the alias was not an id.
    assert response.status_code == 202
    assert opsgenie.request_status[response.json()["requestId"]] == "Alert does not exist"
    alert = opsgenie.alert(DEDUP)
    assert alert is not None
    assert alert.acknowledged is False


# --- Slack -----------------------------------------------------------------------------------


async def test_slack_post_sends_the_exact_message(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    page = make_page(ContactKind.SLACK, address="C0INCIDENTS")
    result = await slack_notifier(client, slack.url).notify(page)

    [request] = slack.requests
    assert (request.method, request.path) == ("POST", "/api/chat.postMessage")
    assert request.header("authorization") == f"Bearer {SLACK_TOKEN}"
    assert request.header("content-type") == "application/json; charset=utf-8"
    headline = f"[SEV1] INC-7: Checkout error rate above 5% - acknowledge: {ACK_URL}"
    assert request.json() == {
        "channel": "C0INCIDENTS",
        "text": headline,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
            {
                "type": "section",
                "text": {"type": "plain_text", "text": "Payments fail for EU customers."},
            },
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Acknowledge"},
                        "url": ACK_URL,
                        "style": "primary",
                    }
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"paged alice · urgency high · <{RUNBOOK}|Runbook>",
                    }
                ],
            },
        ],
        "unfurl_links": False,
    }
    assert result.external_id == "C0INCIDENTS:1700000000.000101"
    assert result.detail == "posted to C0INCIDENTS"


async def test_slack_follow_ups_thread_under_the_dm(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    notifier = slack_notifier(client, slack.url)
    trigger = await notifier.notify(make_page(ContactKind.SLACK, address="U0ALICE"))
    assert trigger.external_id == "D0ALICE:1700000000.000101"
    for action in (PageAction.ACKNOWLEDGE, PageAction.RESOLVE):
        page = make_page(
            ContactKind.SLACK,
            address="U0ALICE",
            action=action,
            external_id=trigger.external_id,
            actor="bob",
        )
        await notifier.notify(page)

    assert [(m.channel, m.thread_ts, m.reply_broadcast, m.text) for m in slack.messages] == [
        (
            "D0ALICE",
            None,
            False,
            f"[SEV1] INC-7: Checkout error rate above 5% - acknowledge: {ACK_URL}",
        ),
        (
            "D0ALICE",
            "1700000000.000101",
            False,
            "INC-7 acknowledged by bob: Checkout error rate above 5%",
        ),
        (
            "D0ALICE",
            "1700000000.000101",
            True,
            "INC-7 resolved by bob: Checkout error rate above 5%",
        ),
    ]


@pytest.mark.parametrize(
    ("address", "token", "code"),
    [
        ("C0NOWHERE", SLACK_TOKEN, "channel_not_found"),
        ("C0PRIVATE", SLACK_TOKEN, "not_in_channel"),
        ("C0INCIDENTS", "xoxb-revoked-token", "invalid_auth"),
    ],
)
async def test_slack_ok_false_errors_are_permanent(
    client: httpx.AsyncClient, slack: FakeSlack, address: str, token: str, code: str
) -> None:
    notifier = slack_notifier(client, slack.url, token)
    with pytest.raises(PermanentHttpError) as caught:
        await notifier.notify(make_page(ContactKind.SLACK, address=address))
    assert caught.value.message == f"slack answered HTTP 200: {code}"
    assert slack.messages == []


async def test_slack_missing_authorization_is_not_authed(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    response = await client.post(
        f"{slack.url}/api/chat.postMessage", json={"channel": "C0INCIDENTS", "text": "hi"}
    )
    assert response.json() == {"ok": False, "error": "not_authed"}


async def test_slack_429_is_transient_with_retry_after(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    slack.fail_next(1, 429, retry_after="7")
    with pytest.raises(TransientHttpError) as caught:
        await slack_notifier(client, slack.url).notify(make_page(ContactKind.SLACK, "C0INCIDENTS"))
    assert caught.value.message == "slack answered HTTP 429: ratelimited (retry after 7s)"
    assert caught.value.next_retry_delay == timedelta(seconds=7)


@pytest.mark.parametrize(
    ("code", "retry_after", "expected"),
    [
        ("internal_error", None, "slack answered HTTP 200: internal_error"),
        ("ratelimited", "3", "slack answered HTTP 200: ratelimited (retry after 3s)"),
    ],
)
async def test_slack_transient_ok_false_errors(
    client: httpx.AsyncClient, slack: FakeSlack, code: str, retry_after: str | None, expected: str
) -> None:
    slack.error_next(code, retry_after=retry_after)
    with pytest.raises(TransientHttpError) as caught:
        await slack_notifier(client, slack.url).notify(make_page(ContactKind.SLACK, "C0INCIDENTS"))
    assert caught.value.message == expected


@pytest.mark.parametrize(
    ("code", "transient"),
    [
        ("ratelimited", True),
        ("internal_error", True),
        ("fatal_error", True),
        ("service_unavailable", True),
        ("invalid_auth", False),
        ("channel_not_found", False),
        ("not_in_channel", False),
        ("is_archived", False),
        ("some_future_error", False),
    ],
)
def test_slack_error_code_table(code: str, transient: bool) -> None:
    assert is_transient_error(code) is transient


async def test_fake_slack_warns_without_charset(
    client: httpx.AsyncClient, slack: FakeSlack
) -> None:
    response = await client.post(
        f"{slack.url}/api/chat.postMessage",
        json={"channel": "C0INCIDENTS", "text": "hi"},
        headers={"Authorization": f"Bearer {SLACK_TOKEN}"},
    )
    body = response.json()
    assert (body["ok"], body["warning"]) == (True, "missing_charset")


# --- webhook ---------------------------------------------------------------------------------


def webhook(client: httpx.AsyncClient, url: str) -> WebhookNotifier:
    return WebhookNotifier(
        client=client, secret=WEBHOOK_SECRET, base_url=url, clock=lambda: 1741944413.9
    )


async def test_webhook_sends_a_signed_idempotent_event(
    client: httpx.AsyncClient, receiver: RecordingServer
) -> None:
    page = make_page(ContactKind.WEBHOOK, address=f"{receiver.url}/hooks/pages")
    result = await webhook(client, "").notify(page)

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", "/hooks/pages")
    assert request.header("content-type") == "application/json"
    assert request.header("x-fireline-timestamp") == "1741944413"
    assert request.header("idempotency-key") == DEDUP
    assert request.header("x-fireline-signature") == sign(WEBHOOK_SECRET, request.body)
    assert verify(WEBHOOK_SECRET, request.body, request.header("x-fireline-signature") or "")
    assert not verify(
        WEBHOOK_SECRET, request.body + b" ", request.header("x-fireline-signature") or ""
    )
    assert request.json() == {
        "version": 1,
        "event": "trigger",
        "timestamp": 1741944413,
        "dedup_key": DEDUP,
        "incident_id": "INC-7",
        "title": "Checkout error rate above 5%",
        "summary": "Payments fail for EU customers.",
        "severity": "SEV1",
        "urgency": "high",
        "recipient": "alice",
        "service": "checkout",
        "team": "payments",
        "ack_url": ACK_URL,
        "links": [{"href": RUNBOOK, "text": "Runbook"}],
        "details": {"region": "eu-west-1"},
        "actor": "",
    }
    assert (result.external_id, result.detail) == (DEDUP, "HTTP 204")


def test_webhook_signature_is_hmac_sha256_of_the_body() -> None:
    # Independently computed: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
    assert sign("key", b"The quick brown fox jumps over the lazy dog") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


async def test_webhook_follow_up_has_its_own_idempotency_key(
    client: httpx.AsyncClient, receiver: RecordingServer
) -> None:
    page = make_page(ContactKind.WEBHOOK, action=PageAction.RESOLVE)
    result = await webhook(client, receiver.url).notify(page)
    assert receiver.requests[0].header("idempotency-key") == f"{DEDUP}:resolve"
    assert receiver.requests[0].json()["event"] == "resolve"
    assert result.external_id == f"{DEDUP}:resolve"


@pytest.mark.parametrize(
    ("status", "error"), [(500, TransientHttpError), (410, PermanentHttpError)]
)
async def test_webhook_receiver_errors_are_classified(
    client: httpx.AsyncClient, receiver: RecordingServer, status: int, error: type[Exception]
) -> None:
    receiver.reply = Reply(status, {"error": "receiver says no"})
    with pytest.raises(error) as caught:
        await webhook(client, receiver.url).notify(make_page(ContactKind.WEBHOOK))
    assert isinstance(caught.value, PermanentHttpError | TransientHttpError)
    assert caught.value.message == f"webhook answered HTTP {status}: receiver says no"


async def test_webhook_without_url_is_permanent(client: httpx.AsyncClient) -> None:
    with pytest.raises(PermanentHttpError) as caught:
        await webhook(client, "").notify(make_page(ContactKind.WEBHOOK))
    assert caught.value.message == "webhook: no URL for alice's webhook"


# --- secrets ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "secret"),
    [
        (ContactKind.PAGERDUTY, ROUTING_KEY),
        (ContactKind.OPSGENIE, GENIE_KEY),
        (ContactKind.SLACK, SLACK_TOKEN),
        (ContactKind.WEBHOOK, WEBHOOK_SECRET),
    ],
)
async def test_a_vendor_echoing_the_credential_does_not_leak_it(
    client: httpx.AsyncClient, kind: ContactKind, secret: str
) -> None:
    with RecordingServer(Reply(401, {"message": f"bad credential {secret}"})) as server:
        notifiers: dict[ContactKind, Notifier] = {
            ContactKind.PAGERDUTY: PagerDutyNotifier(
                client=client, routing_keys={"default": ROUTING_KEY}, base_url=server.url
            ),
            ContactKind.OPSGENIE: og_notifier(client, server.url),
            ContactKind.SLACK: slack_notifier(client, server.url),
            ContactKind.WEBHOOK: webhook(client, server.url),
        }
        with pytest.raises(PermanentHttpError) as caught:
            await notifiers[kind].notify(make_page(kind))
    assert caught.value.message == f"{kind.value} answered HTTP 401: bad credential [REDACTED]"


# --- console inbox ---------------------------------------------------------------------------

AT = datetime(2025, 3, 14, 9, 30, tzinfo=UTC)


async def test_console_inbox_is_idempotent_by_delivery_key(tmp_path: Path) -> None:
    lines: list[str] = []
    console = ConsoleNotifier(tmp_path, echo=lines.append, clock=lambda: AT)
    page = make_page(ContactKind.CONSOLE)
    first = await console.notify(page)
    second = await console.notify(page)

    assert (
        first
        == second
        == PageResult(
            provider=ContactKind.CONSOLE,
            delivered=True,
            external_id=DEDUP,
            detail=f"inbox {tmp_path / 'inbox.jsonl'}",
            action=PageAction.TRIGGER,
            dedup_key=DEDUP,
        )
    )
    assert lines == [f"PAGE alice [SEV1/high] INC-7: Checkout error rate above 5% | ack: {ACK_URL}"]
    [entry] = read_inbox(tmp_path)
    assert (entry.key, entry.at, entry.page, entry.result) == (DEDUP, AT, page, first)


async def test_console_follow_ups_are_new_entries(tmp_path: Path) -> None:
    lines: list[str] = []
    console = ConsoleNotifier(tmp_path, echo=lines.append, clock=lambda: AT)
    await console.notify(make_page(ContactKind.CONSOLE))
    ack = make_page(ContactKind.CONSOLE, action=PageAction.ACKNOWLEDGE, actor="alice")
    await console.notify(ack)
    await console.notify(ack)

    assert [e.key for e in read_inbox(tmp_path)] == [DEDUP, f"{DEDUP}:acknowledge"]
    assert lines[1] == "PAGE alice INC-7 acknowledged by alice: Checkout error rate above 5%"
    assert len(lines) == 2


def test_read_inbox_of_a_fresh_directory_is_empty(tmp_path: Path) -> None:
    assert read_inbox(tmp_path / "never-used") == []


# --- email -----------------------------------------------------------------------------------


def test_email_message_has_text_html_and_a_stable_message_id() -> None:
    contact = ContactMethod(
        kind=ContactKind.EMAIL, address="alice@example.com", display_name="Alice Example"
    )
    page = make_page(ContactKind.EMAIL, contact=contact)
    first = build_message(page, sender="fireline@example.com", domain="example.com")
    again = build_message(page, sender="fireline@example.com", domain="example.com")

    assert first["Message-ID"] == again["Message-ID"] == message_id(DEDUP, "example.com")
    assert first["Subject"] == "[SEV1] INC-7: Checkout error rate above 5%"
    assert first["To"] == "Alice Example <alice@example.com>"
    assert first["X-Fireline-Dedup-Key"] == DEDUP
    assert first.get_content_type() == "multipart/alternative"
    plain = first.get_body(("plain",))
    html = first.get_body(("html",))
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    assert plain.get_content() == (
        "[SEV1] INC-7: Checkout error rate above 5%\n\n"
        "Payments fail for EU customers.\n\n"
        "Paged: alice (urgency high)\n"
        f"Acknowledge: {ACK_URL}\n"
        f"Runbook: {RUNBOOK}\n"
    )
    assert f'<a href="{ACK_URL}"><strong>Acknowledge</strong></a>' in html.get_content()


def test_email_follow_up_replies_to_the_trigger() -> None:
    trigger_id = message_id(DEDUP, "example.com")
    page = make_page(
        ContactKind.EMAIL,
        address="alice@example.com",
        action=PageAction.RESOLVE,
        external_id=trigger_id,
    )
    msg = build_message(page, sender="fireline@example.com", domain="example.com")
    assert msg["Subject"] == "[resolved] INC-7: Checkout error rate above 5%"
    assert msg["In-Reply-To"] == msg["References"] == trigger_id
    assert msg["Message-ID"] == message_id(f"{DEDUP}:resolve", "example.com")
    assert msg["Message-ID"] != trigger_id


@pytest.mark.parametrize(
    ("exc", "error", "message"),
    [
        (
            smtplib.SMTPRecipientsRefused({"alice@example.com": (550, b"5.1.1 No such user")}),
            PermanentSmtpError,
            "email answered SMTP 550: 5.1.1 No such user",
        ),
        (
            smtplib.SMTPRecipientsRefused({"alice@example.com": (451, b"4.7.1 Greylisted")}),
            TransientSmtpError,
            "email answered SMTP 451: 4.7.1 Greylisted",
        ),
        (
            smtplib.SMTPDataError(554, b"5.7.1 Message rejected"),
            PermanentSmtpError,
            "email answered SMTP 554: 5.7.1 Message rejected",
        ),
        (
            smtplib.SMTPAuthenticationError(535, b"5.7.8 bad password hunter2-secret"),
            PermanentSmtpError,
            "email answered SMTP 535: 5.7.8 bad password [REDACTED]",
        ),
        (
            smtplib.SMTPSenderRefused(421, b"4.3.2 Try again later", "fireline@example.com"),
            TransientSmtpError,
            "email answered SMTP 421: 4.3.2 Try again later",
        ),
        (
            smtplib.SMTPServerDisconnected("Connection unexpectedly closed"),
            TransientSmtpError,
            "email unreachable: SMTPServerDisconnected: Connection unexpectedly closed",
        ),
        (
            TimeoutError("timed out"),
            TransientSmtpError,
            "email timed out: TimeoutError: timed out",
        ),
        (
            smtplib.SMTPNotSupportedError("STARTTLS extension not supported by server."),
            PermanentSmtpError,
            "email server refused: STARTTLS extension not supported by server.",
        ),
    ],
)
def test_smtp_error_classification(exc: OSError, error: type[Exception], message: str) -> None:
    classified = classify_smtp_error(exc, ("hunter2-secret",))
    assert type(classified) is error
    assert classified.message == message
    assert classified.non_retryable is (error is PermanentSmtpError)


async def test_smtp_server_down_is_transient() -> None:
    notifier = EmailNotifier(host="127.0.0.1", port=free_port(), sender="fireline@example.com")
    with pytest.raises(TransientSmtpError) as caught:
        await notifier.notify(make_page(ContactKind.EMAIL, address="alice@example.com"))
    assert caught.value.message == (
        "email unreachable: ConnectionRefusedError: [Errno 111] Connection refused"
    )


async def test_email_through_a_real_smtp_server() -> None:
    # A dev dependency: a missing one must fail the test, not skip it.
    import aiosmtpd.controller as controller_module

    received: list[Any] = []

    class Handler:
        # aiosmtpd finds its hooks by these exact names.
        async def handle_RCPT(  # noqa: N802
            self, server: Any, session: Any, envelope: Any, address: str, options: Any
        ) -> str:
            if address.startswith("nobody@"):
                return "550 5.1.1 No such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(  # noqa: N802
            self, server: Any, session: Any, envelope: Any
        ) -> str:
            received.append(envelope)
            return "250 Message accepted for delivery"

    controller = controller_module.Controller(Handler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        notifier = EmailNotifier(
            host="127.0.0.1", port=controller.port, sender="fireline@example.com"
        )
        page = make_page(ContactKind.EMAIL, address="alice@example.com")
        result = await notifier.notify(page)
        with pytest.raises(PermanentSmtpError) as caught:
            await notifier.notify(make_page(ContactKind.EMAIL, address="nobody@example.com"))
    finally:
        controller.stop()

    [envelope] = received
    assert envelope.mail_from == "fireline@example.com"
    assert envelope.rcpt_tos == ["alice@example.com"]
    assert f"Message-ID: {message_id(DEDUP, 'example.com')}".encode() in envelope.content
    assert result.external_id == message_id(DEDUP, "example.com")
    assert caught.value.message == "email answered SMTP 550: 5.1.1 No such user"


# --- the activity ----------------------------------------------------------------------------


async def test_notify_send_dispatches_and_a_retry_pages_once(
    client: httpx.AsyncClient, pagerduty: FakePagerDuty, tmp_path: Path
) -> None:
    activities = NotifyActivities(
        {
            ContactKind.PAGERDUTY: pd_notifier(client, pagerduty),
            ContactKind.CONSOLE: ConsoleNotifier(tmp_path, clock=lambda: AT),
        }
    )
    env = ActivityEnvironment()
    pd_page = make_page(ContactKind.PAGERDUTY)
    pagerduty.fail_next(1, 503)
    with pytest.raises(TransientHttpError):
        await env.run(activities.send, pd_page)
    # Temporal's retries run the same activity with the same input.
    for _ in range(2):
        result = await env.run(activities.send, pd_page)
        assert (result.provider, result.external_id) == (ContactKind.PAGERDUTY, DEDUP)
        inbox = await env.run(activities.send, make_page(ContactKind.CONSOLE))
        assert inbox.provider is ContactKind.CONSOLE

    assert len(pagerduty.alerts) == 1
    assert len(read_inbox(tmp_path)) == 1


async def test_notify_send_without_a_provider_is_permanent() -> None:
    env = ActivityEnvironment()
    with pytest.raises(ProviderNotConfigured) as caught:
        await env.run(NotifyActivities({}).send, make_page(ContactKind.SLACK, "C0INCIDENTS"))
    assert caught.value.message == "no slack provider is configured"
    assert caught.value.type == "ProviderNotConfigured"
    assert caught.value.non_retryable is True


def test_page_contract_rejects_unknown_fields() -> None:
    data = json.loads(make_page(ContactKind.CONSOLE).model_dump_json())
    data["priority"] = "P1"
    with pytest.raises(ValueError, match="priority"):
        Page.model_validate(data)

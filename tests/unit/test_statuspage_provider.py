"""Atlassian Statuspage provider against the loopback fake: wire format, dedup, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.http import PermanentHttpError, TransientHttpError
from activities.providers.statuspage import (
    MAX_NAME_CHARS,
    PublicationRefused,
    StatuspagePublisher,
)
from activities.status_page import StatusPageActivities
from tests.fakes.statuspage import FakeStatuspage
from workflows.contracts import (
    MAX_BODY_CHARS,
    ComponentStatus,
    PublicStatus,
    StatusImpact,
    StatusPublication,
    StatusPublished,
)

API_KEY = "2a7b9d4aac30956d537ac76850f4d78de30994703680056cc103862d53cf8074"
PAGE_ID = "qfn30z5r6s5h"
COMPONENTS = {"checkout": "cmp0checkout", "payments-api": "cmp0payments", "website": "cmp0web"}
AT = datetime(2026, 11, 28, 5, 0, tzinfo=UTC)


def publication(**changes: Any) -> StatusPublication:
    """INC-7's first customer update: checkout down, investigating."""
    pub = StatusPublication(
        incident_id="INC-7",
        update_id="INC-7-u1",
        at=AT,
        title="Checkout failures",
        status=PublicStatus.INVESTIGATING,
        impact=StatusImpact.CRITICAL,
        body="Some customers cannot complete checkout. We are investigating.",
        components={"checkout": ComponentStatus.MAJOR_OUTAGE},
    )
    return pub.model_copy(update=changes)


@pytest.fixture
def fake() -> Iterator[FakeStatuspage]:
    with FakeStatuspage(page_id=PAGE_ID, api_key=API_KEY, components=COMPONENTS.values()) as srv:
        yield srv


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=0.5, trust_env=False) as client:
        yield client


def publisher(
    http: httpx.AsyncClient, fake: FakeStatuspage, api_key: str = API_KEY
) -> StatuspagePublisher:
    return StatuspagePublisher(
        client=http,
        api_key=api_key,
        page_id=PAGE_ID,
        component_ids=COMPONENTS,
        base_url=fake.base_url,
    )


def writes(fake: FakeStatuspage) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.requests if r.method != "GET"]


async def test_first_update_creates_the_incident_with_the_documented_body(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    result = await publisher(http, fake).publish(publication())

    lookup, create = fake.requests
    assert (lookup.method, lookup.path) == ("GET", f"/v1/pages/{PAGE_ID}/incidents/unresolved")
    assert lookup.query == {"per_page": ["100"]}
    assert (create.method, create.path) == ("POST", f"/v1/pages/{PAGE_ID}/incidents")
    assert create.header("authorization") == f"OAuth {API_KEY}"
    assert create.header("content-type") == "application/json"
    assert create.json() == {
        "incident": {
            "name": "Checkout failures",
            "status": "investigating",
            "impact_override": "critical",
            "body": "Some customers cannot complete checkout. We are investigating.",
            "component_ids": ["cmp0checkout"],
            "components": {"cmp0checkout": "major_outage"},
            "metadata": {"fireline": {"incident_id": "INC-7", "update_id": "INC-7-u1"}},
            "deliver_notifications": True,
        }
    }
    (incident,) = fake.incidents.values()
    assert result == StatusPublished(
        provider="atlassian", external_id=incident["id"], url=incident["shortlink"]
    )
    assert fake.component_status["cmp0checkout"] == "major_outage"


async def test_later_updates_patch_the_same_incident_and_resolve_it(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    provider = publisher(http, fake)
    first = await provider.publish(publication())
    await provider.publish(
        publication(
            update_id="INC-7-u2",
            status=PublicStatus.IDENTIFIED,
            body="A faulty release was identified and is being rolled back.",
        )
    )
    last = await provider.publish(
        publication(
            update_id="INC-7-u3",
            status=PublicStatus.RESOLVED,
            body="Checkout works again.",
            components={"checkout": ComponentStatus.OPERATIONAL},
        )
    )

    assert last.external_id == first.external_id
    path = f"/v1/pages/{PAGE_ID}/incidents"
    assert writes(fake) == [
        ("POST", path),
        ("PATCH", f"{path}/{first.external_id}"),
        ("PATCH", f"{path}/{first.external_id}"),
    ]
    incident = fake.incidents[first.external_id]
    assert incident["status"] == "resolved"
    assert [u["body"] for u in incident["incident_updates"]] == [
        "Checkout works again.",
        "A faulty release was identified and is being rolled back.",
        "Some customers cannot complete checkout. We are investigating.",
    ]
    assert fake.component_status["cmp0checkout"] == "operational"


async def test_a_retried_create_after_a_lost_answer_creates_one_incident(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    provider = publisher(http, fake)
    # Statuspage creates the incident; the connection dies before the answer arrives.
    fake.lose_next_answer("POST")
    with pytest.raises(TransientHttpError):
        await provider.publish(publication())
    assert len(fake.incidents) == 1

    result = await provider.publish(publication())  # Temporal's retry

    (incident,) = fake.incidents.values()
    assert result.external_id == incident["id"]
    assert len(incident["incident_updates"]) == 1
    assert [m for m, _ in writes(fake)] == ["POST"]


async def test_a_retried_update_after_a_lost_answer_is_not_repeated(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    provider = publisher(http, fake)
    await provider.publish(publication())
    # The PATCH reaches Statuspage, which applies it; the connection dies before the answer.
    second = publication(update_id="INC-7-u2", body="Rolling back.")
    fake.lose_next_answer("PATCH")
    with pytest.raises(TransientHttpError):
        await provider.publish(second)

    await provider.publish(second)  # Temporal's retry

    (incident,) = fake.incidents.values()
    assert [u["body"] for u in incident["incident_updates"]] == [
        "Rolling back.",
        "Some customers cannot complete checkout. We are investigating.",
    ]
    assert [m for m, _ in writes(fake)] == ["POST", "PATCH"]


async def test_a_lost_resolve_is_found_among_resolved_incidents(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    provider = publisher(http, fake)
    first = await provider.publish(publication())
    resolve = publication(update_id="INC-7-u2", status=PublicStatus.RESOLVED, body="Fixed.")
    fake.lose_next_answer("PATCH")
    with pytest.raises(TransientHttpError):
        await provider.publish(resolve)

    again = await provider.publish(resolve)

    assert again.external_id == first.external_id
    assert len(fake.incidents) == 1
    assert [m for m, _ in writes(fake)] == ["POST", "PATCH"]
    lookups = [(r.path, r.query) for r in fake.requests if r.method == "GET"][-2:]
    assert lookups == [
        (f"/v1/pages/{PAGE_ID}/incidents/unresolved", {"per_page": ["100"]}),
        (f"/v1/pages/{PAGE_ID}/incidents", {"limit": ["100"]}),
    ]


async def test_429_is_transient_with_retry_after(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    fake.fail_next(1, 429, retry_after="3")
    with pytest.raises(TransientHttpError) as caught:
        await publisher(http, fake).publish(publication())
    assert caught.value.message == (
        "statuspage answered HTTP 429: Rate limit exceeded (retry after 3s)"
    )
    assert caught.value.next_retry_delay == timedelta(seconds=3)
    assert fake.incidents == {}


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_transient(
    http: httpx.AsyncClient, fake: FakeStatuspage, status: int
) -> None:
    fake.fail_next(1, status)
    with pytest.raises(TransientHttpError) as caught:
        await publisher(http, fake).publish(publication())
    assert caught.value.message == f"statuspage answered HTTP {status}: Internal Server Error"
    assert not caught.value.non_retryable


async def test_a_wrong_api_key_is_permanent_and_not_echoed(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    wrong = "0" * 64
    with pytest.raises(PermanentHttpError) as caught:
        await publisher(http, fake, api_key=wrong).publish(publication())
    assert caught.value.message == "statuspage answered HTTP 401: Could not authenticate"
    assert caught.value.non_retryable
    assert wrong not in caught.value.message


async def test_an_unknown_page_is_permanent(http: httpx.AsyncClient, fake: FakeStatuspage) -> None:
    provider = StatuspagePublisher(
        client=http,
        api_key=API_KEY,
        page_id="nosuchpage",
        component_ids=COMPONENTS,
        base_url=fake.base_url,
    )
    with pytest.raises(PermanentHttpError) as caught:
        await provider.publish(publication())
    assert caught.value.message == (
        "statuspage answered HTTP 404: The requested page could not be found"
    )


async def test_a_component_statuspage_does_not_know_is_a_permanent_422(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    provider = StatuspagePublisher(
        client=http,
        api_key=API_KEY,
        page_id=PAGE_ID,
        component_ids={"checkout": "cmp0deleted"},
        base_url=fake.base_url,
    )
    with pytest.raises(PermanentHttpError) as caught:
        await provider.publish(publication())
    assert caught.value.message == (
        "statuspage answered HTTP 422: Component cmp0deleted could not be found"
    )


async def test_a_component_without_a_statuspage_id_is_refused_before_sending(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    pub = publication(components={"search": ComponentStatus.DEGRADED_PERFORMANCE})
    with pytest.raises(PublicationRefused) as caught:
        await publisher(http, fake).publish(pub)
    assert caught.value.message == (
        "components: 'search' has no statuspage_id in the status_page config"
    )
    assert caught.value.non_retryable
    assert fake.requests == []


async def test_a_body_over_the_limit_is_refused_naming_the_limit(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    pub = publication(body="x" * (MAX_BODY_CHARS + 1))
    with pytest.raises(PublicationRefused) as caught:
        await publisher(http, fake).publish(pub)
    assert caught.value.message == (
        "body is 25001 characters; Statuspage accepts at most 25000 (MAX_BODY_CHARS)"
    )
    assert caught.value.type == "PublicationRefused"
    assert caught.value.non_retryable
    assert fake.requests == []


async def test_a_body_at_the_limit_is_sent(http: httpx.AsyncClient, fake: FakeStatuspage) -> None:
    await publisher(http, fake).publish(publication(body="x" * MAX_BODY_CHARS))
    (incident,) = fake.incidents.values()
    assert len(incident["incident_updates"][0]["body"]) == MAX_BODY_CHARS


async def test_a_title_over_the_limit_is_refused_naming_the_limit(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    with pytest.raises(PublicationRefused) as caught:
        await publisher(http, fake).publish(publication(title="t" * (MAX_NAME_CHARS + 1)))
    assert caught.value.message == (
        "title is 256 characters; Statuspage accepts at most 255 (MAX_NAME_CHARS)"
    )


async def test_the_activity_dispatches_to_the_provider(
    http: httpx.AsyncClient, fake: FakeStatuspage
) -> None:
    activities = StatusPageActivities(publisher(http, fake))
    result = await ActivityEnvironment().run(activities.publish, publication())
    assert result.provider == "atlassian"
    assert len(fake.incidents) == 1

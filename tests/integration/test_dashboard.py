"""The commander's dashboard over HTTP, on the real dev server with a real worker.

Sessions and CSRF, every button through the same Updates as the API (and their refusals
shown, not 500s), approvals, the live stream, and escaping of what people type.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from markupsafe import escape
from temporalio.client import Client

from tests.dashboard_stack import (
    TOKENS,
    Stack,
    bearer,
    dashboard_stack,
    hidden,
    log_in,
)
from tests.support import demo_config, eventually
from worker.config import FirelineConfig
from worker.incident_service import IncidentService
from worker.runbook_service import RunbookService
from worker.ui import ui_router
from worker.ui.live import event, new_entries
from worker.ui.render import IncidentView, environment
from worker.ui.sessions import SESSION_COOKIE, Session, SessionSigner, session_key
from workflows.contracts import (
    AlertChange,
    AlertStatus,
    Audience,
    ComponentStatus,
    IncidentState,
    PublicStatus,
    Role,
    Severity,
    StakeholderUpdate,
    StatusImpact,
    StatusPublished,
    TimelineEntry,
    UpdateDelivery,
    WarRoom,
)

pytestmark = pytest.mark.integration

TASK_QUEUE = "fireline-dashboard-tests"
PAYLOAD = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = str(escape(PAYLOAD))


@pytest.fixture(scope="module")
async def stack(
    dev_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with dashboard_stack(dev_client, TASK_QUEUE, tmp_path_factory.mktemp("dash")) as s:
        yield s


@pytest.fixture
async def browser_like(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """A fresh client with its own cookie jar, not logged in."""
    async with httpx.AsyncClient(base_url=stack.url, timeout=20.0) as http:
        yield http


@contextlib.asynccontextmanager
async def logged_in(stack: Stack, user: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.url, timeout=20.0) as http:
        response = await log_in(http, user)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/ui"
        yield http


def people(state: dict[str, Any]) -> list[dict[str, Any]]:
    """Timeline entries someone caused (paging entries arrive on their own schedule)."""
    return [e for e in state["timeline"] if e["actor"] is not None]


def flash(page: str) -> str:
    found = re.search(r'<p class="flash flash-(ok|error)"[^>]*>(.*?)</p>', page, re.S)
    assert found, "no message on the page"
    return f"{found.group(1)}: {html.unescape(found.group(2))}"


async def press(
    http: httpx.AsyncClient, inc: str, action: str, **fields: str | list[str]
) -> tuple[httpx.Response, str]:
    """Submit a form of the incident page the way a browser does; return the next page."""
    page = await http.get(f"/ui/incidents/{inc}")
    assert page.status_code == 200, page.text
    posted = await http.post(
        f"/ui/incidents/{inc}/{action}", data={"csrf": hidden(page.text, "csrf"), **fields}
    )
    assert posted.status_code == 303, posted.text
    assert posted.headers["location"] == f"/ui/incidents/{inc}"
    after = await http.get(posted.headers["location"])
    assert after.status_code == 200
    return posted, after.text


async def test_without_a_session_pages_redirect_and_posts_change_nothing(
    stack: Stack, browser_like: httpx.AsyncClient
) -> None:
    inc = await stack.declare()
    before = await stack.state(inc)

    for path in ("/ui", f"/ui/incidents/{inc}"):
        response = await browser_like.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == f"/ui/login?next={path}"

    note = await browser_like.post(f"/ui/incidents/{inc}/note", data={"text": "sneaky"})
    assert note.status_code == 401
    assert "nothing was done" in note.text
    ack = await browser_like.post(f"/ui/incidents/{inc}/acknowledge", data={})
    assert ack.status_code == 401
    events = await browser_like.get(f"/ui/incidents/{inc}/events")
    assert events.status_code == 401
    # A forged cookie is no session either.
    browser_like.cookies.set(SESSION_COOKIE, "eyJ1IjoiYm9iIn0.forged")
    forged = await browser_like.post(f"/ui/incidents/{inc}/acknowledge", data={})
    assert forged.status_code == 401

    after = await stack.state(inc)
    assert people(after) == people(before)
    assert after["status"] == "declared"


async def test_a_wrong_token_or_a_stale_login_form_is_refused(
    stack: Stack, browser_like: httpx.AsyncClient
) -> None:
    form = await browser_like.get("/ui/login")
    field = hidden(form.text, "login_csrf")
    wrong = await browser_like.post(
        "/ui/login", data={"login_csrf": field, "token": "not-a-token", "next": "/ui"}
    )
    assert wrong.status_code == 401
    assert "token: this token is not valid" in wrong.text
    assert SESSION_COOKIE not in wrong.cookies

    # The form's field without the cookie it was served with: a cross-site login attempt.
    async with httpx.AsyncClient(base_url=stack.url) as elsewhere:
        stale = await elsewhere.post(
            "/ui/login", data={"login_csrf": field, "token": TOKENS["bob"], "next": "/ui"}
        )
    assert stale.status_code == 403
    assert SESSION_COOKIE not in stale.cookies

    assert (await browser_like.get("/ui")).status_code == 303  # still not logged in


async def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(stack: Stack) -> None:
    http = httpx.AsyncClient(base_url=stack.url, timeout=20.0)
    async with http:
        response = await log_in(http, "bob")
        assert response.status_code == 303
        set_cookie = [
            v for v in response.headers.get_list("set-cookie") if v.startswith(SESSION_COOKIE)
        ]
        assert len(set_cookie) == 1
        flags = set_cookie[0].lower()
        assert "httponly" in flags
        assert "samesite=strict" in flags
        assert "path=/ui" in flags
        assert "max-age=43200" in flags
        home = await http.get("/ui")
        assert home.status_code == 200
        assert "signed in as <strong>bob</strong>" in home.text
        old_cookie = http.cookies[SESSION_COOKIE]

        # Logging out needs the CSRF field too.
        refused = await http.post("/ui/logout", data={})
        assert refused.status_code == 403
        out = await http.post("/ui/logout", data={"csrf": hidden(home.text, "csrf")})
        assert out.status_code == 303
        assert (await http.get("/ui")).status_code == 303
        # The old cookie, replayed, is no longer a session in this process.
    async with httpx.AsyncClient(base_url=stack.url, cookies={SESSION_COOKIE: old_cookie}) as again:
        assert (await again.get("/ui")).status_code == 303


async def test_posts_without_the_sessions_csrf_token_are_refused(stack: Stack) -> None:
    inc = await stack.declare()
    before = await stack.state(inc)
    async with logged_in(stack, "bob") as bob, logged_in(stack, "carol") as carol:
        carols_csrf = hidden((await carol.get(f"/ui/incidents/{inc}")).text, "csrf")
        for data in ({"text": "no token"}, {"text": "wrong", "csrf": "x"}):
            response = await bob.post(f"/ui/incidents/{inc}/note", data=data)
            assert response.status_code == 403, response.text
            assert "CSRF token is missing or stale" in response.text
        # Another session's token does not fit bob's session.
        borrowed = await bob.post(
            f"/ui/incidents/{inc}/note", data={"text": "borrowed", "csrf": carols_csrf}
        )
        assert borrowed.status_code == 403
    assert people(await stack.state(inc)) == people(before)


async def test_every_button_runs_its_update_and_lands_on_the_timeline(stack: Stack) -> None:
    inc = await stack.declare()
    async with logged_in(stack, "bob") as bob:
        _, page = await press(bob, inc, "acknowledge")
        assert flash(page) == "ok: bob acknowledged"
        assert '<span class="status status-acknowledged" id="status">acknowledged</span>' in page

        # The validator refuses a second acknowledgement: its reason, not a 500.
        _, page = await press(bob, inc, "acknowledge")
        kind, _, reason = flash(page).partition(": ")
        assert kind == "error"
        assert reason.startswith("Acknowledge: ")
        assert "acknowledged" in reason

        _, page = await press(bob, inc, "role", role="scribe", user="carol")
        assert flash(page) == "ok: bob made carol scribe"
        _, page = await press(bob, inc, "role", role="scribe", user="carol")
        assert flash(page) == "error: Assign role: carol is already scribe"
        _, page = await press(bob, inc, "role", role="boss", user="carol")
        assert flash(page).startswith("error: Assign role: role: 'boss' is not one of commander")

        _, page = await press(bob, inc, "severity", severity="SEV1", reason="all regions")
        assert flash(page) == "ok: bob raised severity SEV2 → SEV1: all regions"
        _, page = await press(bob, inc, "severity", severity="SEV3", reason="")
        assert flash(page) == "error: Change severity: reason: required"

        _, page = await press(bob, inc, "note", text="1.4.0 is bad")
        assert flash(page) == "ok: 1.4.0 is bad"

        _, page = await press(
            bob,
            inc,
            "update",
            text="We are rolling back.",
            status="identified",
            audiences=["responders", "executives"],
        )
        assert flash(page).startswith("ok: bob posted update")
        assert "We are rolling back." in page
        _, page = await press(bob, inc, "update", text="nobody to tell", audiences=[])
        assert flash(page) == "error: Post update: audiences: choose at least one audience"

        _, page = await press(bob, inc, "mitigate", summary="rolled back")
        assert flash(page).startswith("ok: bob marked the incident mitigated: rolled back")
        _, page = await press(bob, inc, "resolve", summary="")
        assert flash(page) == "error: Resolve: summary: required"
        _, page = await press(bob, inc, "resolve", summary="1.3.9 restored")
        assert flash(page) == "ok: bob resolved the incident: 1.3.9 restored"

    state = await stack.state(inc)
    assert state["status"] == "resolved"
    assert state["roles"] == {"commander": "bob", "scribe": "carol"}
    assert state["severity"] == "SEV1"
    mine = [(e["kind"], e["actor"]) for e in state["timeline"] if e["actor"] == "bob"]
    assert mine == [
        ("acknowledged", "bob"),
        ("role_assigned", "bob"),
        ("severity_changed", "bob"),
        ("note", "bob"),
        ("stakeholder_update", "bob"),
        ("mitigated", "bob"),
        ("resolved", "bob"),
    ]
    assert [u["text"] for u in state["updates"]][:1] == ["We are rolling back."]


async def test_pending_approvals_are_decided_from_the_page(stack: Stack) -> None:
    inc = await stack.declare()
    run = await stack.start_run(inc)
    decide = f"/ui/incidents/{inc}/runs/{run}/steps/first/decide"
    async with logged_in(stack, "carol") as carol, logged_in(stack, "bob") as bob:
        page = (await bob.get(f"/ui/incidents/{inc}")).text
        assert f'action="{decide}"' in page
        assert f"Roll back {inc} to the last good release?" in page

        # Carol is not the commander: the run's validator refuses, the page says why.
        csrf = hidden((await carol.get(f"/ui/incidents/{inc}")).text, "csrf")
        refused = await carol.post(decide, data={"csrf": csrf, "verdict": "approve"})
        assert refused.status_code == 303
        shown = flash((await carol.get(refused.headers["location"])).text)
        assert shown == "error: carol may not approve first: allowed are the commander (bob)"

        approved = await bob.post(
            decide, data={"csrf": hidden(page, "csrf"), "verdict": "approve", "comment": "go"}
        )
        assert approved.status_code == 303
        after = (await bob.get(approved.headers["location"])).text
        assert flash(after) == f"ok: bob approved first in {run}"
        await stack.waiting_on(inc, run, "second")
        page = (await bob.get(f"/ui/incidents/{inc}")).text
        assert f"/runs/{run}/steps/second/decide" in page
        assert f"/runs/{run}/steps/first/decide" not in page

        bad = await bob.post(decide, data={"csrf": hidden(page, "csrf"), "verdict": "maybe"})
        assert flash((await bob.get(bad.headers["location"])).text) == (
            "error: verdict: choose Approve or Reject"
        )


async def test_the_list_shows_open_incidents_with_roles_and_who_is_paged(stack: Stack) -> None:
    inc = await stack.declare(title="Payments down")
    async with logged_in(stack, "bob") as bob:

        async def listed() -> str:
            page = (await bob.get("/ui")).text
            row = re.search(rf'<tr id="row-{inc}">(.*?)</tr>', page, re.S)
            assert row, "not listed yet"
            assert "carol" in row.group(1), "not paged yet"
            return row.group(1)

        row = await eventually(listed, timeout=30)
    assert f'href="/ui/incidents/{inc}"' in row
    assert "Payments down" in row
    assert '<span class="sev sev-sev2">SEV2</span>' in row
    assert "declared" in row
    assert '<span class="muted">commander</span> bob' in row
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    assert cells[-1].strip() == "carol"


async def test_html_in_notes_and_titles_is_escaped_on_pages_and_in_the_stream(
    stack: Stack,
) -> None:
    inc = await stack.declare(title=PAYLOAD)
    async with logged_in(stack, "bob") as bob:
        _, page = await press(bob, inc, "note", text=PAYLOAD)
        assert ESCAPED in page
        assert PAYLOAD not in page
        assert "<script>alert" not in page
        assert "<img src=x" not in page
        listing = await eventually(lambda: _listed(bob, inc), timeout=30)
        assert ESCAPED in listing
        assert PAYLOAD not in listing

        # The stream from the beginning: every entry, rendered by the same templates.
        text = await _stream_until(bob, f"/ui/incidents/{inc}/events?after=", "note")
    assert ESCAPED in text
    assert "<script>" not in text
    assert "<img src=x" not in text


async def test_the_stream_sends_new_entries_and_ends_when_the_client_leaves(
    stack: Stack,
) -> None:
    inc = await stack.declare()
    earlier = [e["id"] for e in (await stack.state(inc))["timeline"]]
    last = earlier[-1]
    async with logged_in(stack, "bob") as bob:
        seen: list[str] = []

        async def read() -> None:
            async with bob.stream("GET", f"/ui/incidents/{inc}/events?after={last}") as response:
                assert response.status_code == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                async for line in response.aiter_lines():
                    seen.append(line)
                    if "live from the API" in line:
                        return

        reader = asyncio.create_task(read())
        await eventually(_stream_open(stack))
        note = await stack.api.post(
            f"/v1/incidents/{inc}/notes",
            json={"text": "live from the API"},
            headers=bearer("carol"),
        )
        assert note.status_code == 200
        await asyncio.wait_for(reader, 15)
    entry_id = note.json()["entry"]["id"]
    assert f"id: {entry_id}" in seen
    assert "event: entry" in seen
    # Only what is new: the entries the page already had are not sent again.
    assert not [line for line in seen if line.removeprefix("id: ") in earlier]

    async def closed() -> None:
        assert stack.feed.active == 0

    await eventually(closed)


async def test_local_mode_lets_this_machine_pick_a_user_and_nobody_else(
    dev_client: Client, stack: Stack
) -> None:
    config = demo_config()
    assert not config.auth.tokens
    incidents = IncidentService(dev_client, config, TASK_QUEUE)
    runbooks = RunbookService(dev_client, config, TASK_QUEUE, {}, incidents=incidents)
    app = FastAPI()
    app.include_router(ui_router(incidents, runbooks, config, secret=b"local-secret"))
    local = httpx.ASGITransport(app=app, client=("127.0.0.1", 5000))
    remote = httpx.ASGITransport(app=app, client=("10.1.2.3", 5000))
    async with httpx.AsyncClient(transport=local, base_url="http://localhost") as http:
        form = await http.get("/ui/login")
        assert form.status_code == 200
        assert '<option value="alice">alice — Alice Example</option>' in form.text
        field = hidden(form.text, "login_csrf")
        unknown = await http.post("/ui/login", data={"login_csrf": field, "user": "mallory"})
        assert unknown.status_code == 401
        assert "user: unknown user &#39;mallory&#39;" in unknown.text
        field = hidden(unknown.text, "login_csrf")
        ok = await http.post("/ui/login", data={"login_csrf": field, "user": "alice"})
        assert ok.status_code == 303
        session = http.cookies[SESSION_COOKIE]
        assert (await http.get("/ui")).status_code == 200
    async with httpx.AsyncClient(
        transport=remote, base_url="http://fireline", cookies={SESSION_COOKIE: session}
    ) as http:
        refused = await http.get("/ui/login")
        assert refused.status_code == 403
        assert "answers only on this machine" in refused.text
        # A session made on this machine is worth nothing from another one.
        assert (await http.get("/ui")).status_code == 303


def test_sessions_expire_and_token_sessions_end_with_their_token() -> None:
    clock = [datetime(2026, 11, 28, 9, 0, tzinfo=UTC)]
    key = session_key(b"unit")
    config = _token_config("bob", "tok-1")
    signer = SessionSigner(key, config, ttl=timedelta(hours=1), now=lambda: clock[0])
    cookie, session = signer.issue("bob", "tok-1")
    assert signer.read(cookie, "10.0.0.1") == session
    assert signer.csrf_ok(session, session.csrf)
    assert not signer.csrf_ok(session, None)
    tampered = cookie[:-2] + ("AA" if not cookie.endswith("AA") else "BB")
    assert signer.read(tampered, "10.0.0.1") is None
    clock[0] += timedelta(hours=1)
    assert signer.read(cookie, "10.0.0.1") is None
    # The token was replaced in the config: the sessions it opened are over.
    clock[0] -= timedelta(minutes=30)
    rotated = SessionSigner(key, _token_config("bob", "tok-2"), now=lambda: clock[0])
    assert rotated.read(cookie, "10.0.0.1") is None
    # A local-mode session is not a session once tokens are configured.
    local_cookie, _ = SessionSigner(key, demo_config(), now=lambda: clock[0]).issue("bob")
    assert signer.read(local_cookie, "127.0.0.1") is None


def test_stream_framing_keeps_multiline_text_inside_one_event() -> None:
    assert event("entry", "a\r\nb\rc\nd", "id\n1") == (
        "id: id 1\nevent: entry\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
    )
    ids = ["e1", "e2", "e3"]
    assert list(new_entries(ids, "e1")) == [1, 2]
    assert list(new_entries(ids, "")) == [0, 1, 2]
    assert list(new_entries(ids, "forged")) == []


def _token_config(user: str, token: str) -> FirelineConfig:
    raw = demo_config().model_dump(mode="json", exclude_unset=True)
    digest = hashlib.sha256(token.encode()).hexdigest()
    raw["auth"] = {"tokens": [{"user": user, "token_sha256": digest}]}
    return FirelineConfig.model_validate(raw)


async def _listed(http: httpx.AsyncClient, inc: str) -> str:
    page = (await http.get("/ui")).text
    row = re.search(rf'<tr id="row-{inc}">(.*?)</tr>', page, re.S)
    assert row, "not listed yet"
    return row.group(1)


async def _stream_until(http: httpx.AsyncClient, path: str, marker: str) -> str:
    lines: list[str] = []

    async def read() -> None:
        async with http.stream("GET", path) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                lines.append(line)
                if marker in line and line.startswith("data:"):
                    return

    await asyncio.wait_for(read(), 15)
    return "\n".join(lines)


def _stream_open(stack: Stack) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        assert stack.feed.active == 1

    return check


def test_every_field_people_or_senders_write_is_escaped_and_only_http_links_link() -> None:
    at = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    evil = PAYLOAD
    state = IncidentState(
        id="INC-7",
        title=evil,
        service=evil,
        severity=Severity.SEV1,
        declared_at=at,
        declared_by=evil,
        roles={Role.COMMANDER: evil},
        resolution_summary=evil,
        timeline=[
            TimelineEntry(id="e1", at=at, kind="note", actor=evil, text=evil),
            TimelineEntry(
                id="e2", at=at, kind="page", text=evil, data={"user": evil, "contact": evil}
            ),
        ],
        alerts={
            "f1": AlertChange(
                fingerprint="f1",
                alertname=evil,
                status=AlertStatus.FIRING,
                summary=evil,
                labels={evil: evil},
                starts_at=at,
                generator_url="javascript:alert(1)",
            )
        },
        war_room=WarRoom(provider="slack", channel_name=evil, url="javascript:alert(2)"),
        status_page=StatusPublished(
            provider="statuspage", external_id=evil, url="https://status.example.com/i/1"
        ),
        updates=[
            StakeholderUpdate(
                id="INC-7-u1",
                at=at,
                actor=evil,
                text=evil,
                status=PublicStatus.IDENTIFIED,
                impact=StatusImpact.MAJOR,
                components={evil: ComponentStatus.MAJOR_OUTAGE},
                audiences=[Audience.CUSTOMERS],
                deliveries=[
                    UpdateDelivery(audience=Audience.CUSTOMERS, channel=evil, ok=False, detail=evil)
                ],
            )
        ],
    )
    view = IncidentView.of(state, {}, [evil], [evil])
    env = environment()
    session = Session("bob", "n", at, None, "csrf-token")
    pages = [
        env.get_template(name).render(base="/ui", view=view, session=session)
        for name in ("_head.html", "_side.html")
    ]
    pages += [env.get_template("_entry.html").render(entry=e) for e in state.timeline]
    text = "\n".join(pages)
    assert PAYLOAD not in text
    assert "<script" not in text
    assert "<img" not in text
    assert text.count(ESCAPED) >= 15
    assert "javascript:" not in text
    assert 'href="https://status.example.com/i/1"' in text
    assert view.paged == [evil]

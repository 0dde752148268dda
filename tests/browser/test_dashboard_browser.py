"""The commander's dashboard in real headless Chromium: log in, watch, approve, stay safe.

The page is never reloaded while the test waits for live changes: a marker set on
``window`` would vanish with a reload, so its survival proves the change arrived over the
live stream. The screenshot of the incident page is written to ``docs/dashboard.png``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect
from temporalio.client import Client

from tests.browser.conftest import DESKTOP, DOCS
from tests.dashboard_stack import TOKENS, Stack, bearer, dashboard_stack

pytestmark = pytest.mark.e2e

TASK_QUEUE = "fireline-dashboard-browser"
PAYLOAD = "<script>window.__pwned = 1</script><b>bold?</b>"


@pytest.fixture
async def stack(
    dev_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    async with dashboard_stack(
        dev_client, TASK_QUEUE, tmp_path_factory.mktemp("dash-browser"), poll_interval=0.3
    ) as s:
        yield s


async def note(stack: Stack, incident_id: str, user: str, text: str) -> None:
    response = await stack.api.post(
        f"/v1/incidents/{incident_id}/notes", json={"text": text}, headers=bearer(user)
    )
    assert response.status_code == 200, response.text


async def mark(page: Page) -> None:
    await page.evaluate("window.__sameDocument = true")


async def still_same_document(page: Page) -> bool:
    return bool(await page.evaluate("window.__sameDocument === true"))


async def test_commander_logs_in_approves_and_watches_live(browser: Browser, stack: Stack) -> None:
    inc = await stack.declare(title="Checkout returns 502 for card payments")
    await note(stack, inc, "alice", "Error rate on checkout-api jumped to 18% after 14:02 deploy.")
    run = await stack.start_run(inc)

    page = await browser.new_page(
        viewport=ViewportSize(width=DESKTOP["width"], height=DESKTOP["height"])
    )
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    # Without a session the dashboard sends the browser to the login form.
    await page.goto(f"{stack.url}/ui/incidents/{inc}")
    await expect(page).to_have_url(f"{stack.url}/ui/login?next=/ui/incidents/{inc}")
    await page.fill("#token", "not-a-token")
    await page.click("button[type=submit]")
    await expect(page.locator("#login-error")).to_have_text("token: this token is not valid")
    await page.fill("#token", TOKENS["bob"])
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{stack.url}/ui/incidents/{inc}")
    await expect(page.locator("#live-state")).to_have_text("live")

    # The open incidents list links here.
    await page.click(".brand")
    await expect(page.locator(f"#row-{inc}")).to_contain_text("bob", timeout=15_000)
    await page.click(f"#row-{inc} a")
    await expect(page.locator("h1")).to_contain_text("Checkout returns 502")
    await expect(page.locator("#live-state")).to_have_text("live")

    # Someone else writes through the API: the timeline shows it without a reload.
    await mark(page)
    await note(stack, inc, "carol", "Rollback target is release 2026.11.27-3.")
    timeline = page.locator("#timeline")
    await expect(timeline.locator("li").first).to_contain_text("Rollback target is release")
    assert await still_same_document(page)

    # Approve the pending step; the next gate appears live once the run moves on.
    approval = page.locator(f"#approval-{run}-first")
    await expect(approval).to_contain_text(f"Roll back {inc} to the last good release?")
    await approval.locator("input[name=comment]").fill("go, rollback is safe")
    await approval.locator("button[value=approve]").click()
    await expect(page.locator("#flash")).to_have_text(f"bob approved first in {run}")
    await mark(page)
    await expect(page.locator(f"#approval-{run}-second")).to_be_visible(timeout=15_000)
    await expect(page.locator(f"#run-{run} .steps")).to_contain_text("go, rollback is safe")
    assert await still_same_document(page)

    # A script in a note is shown as text and never runs.
    await page.fill("#note-text", PAYLOAD)
    await page.click("#note-form button[type=submit]")
    await expect(page.locator("#flash")).to_have_text(PAYLOAD)
    entry = timeline.locator("li.kind-note").first
    await expect(entry.locator(".text")).to_have_text(PAYLOAD)
    assert await timeline.locator("script, b").count() == 0
    assert await page.evaluate("window.__pwned === undefined")

    # And what arrives live is just as inert.
    await mark(page)
    await note(stack, inc, "carol", '<img src=x onerror="window.__pwned = 2"> live payload')
    await expect(timeline.locator("li").first).to_contain_text("live payload")
    assert await timeline.locator("img").count() == 0
    assert await page.evaluate("window.__pwned === undefined")
    assert await still_same_document(page)
    assert errors == []

    # A stakeholder update from its form lands in the updates section.
    await page.click("#update-details summary")
    await page.fill(
        "#update-text", "Card payments fail for some customers; a rollback is underway."
    )
    await page.select_option("#update-form select[name=status]", "identified")
    await page.click("#update-form button[type=submit]")
    await expect(page.locator("#flash")).to_contain_text("bob posted update")
    await expect(page.locator("#updates .update").first).to_contain_text("a rollback is underway")

    await note(stack, inc, "bob", "Rollback approved; watching the 5xx rate.")
    await expect(timeline.locator("li").first).to_contain_text("watching the 5xx rate")
    await page.locator("#flash").evaluate("node => node.remove()")
    DOCS.mkdir(exist_ok=True)
    await page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
    await page.close()

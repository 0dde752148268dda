"""The built-in status page in real headless Chromium, at phone and desktop widths.

Served by uvicorn on loopback from the StatusPageWorkflow on the time-skipping server,
with 60 days of history so the uptime bars have something to show. Refreshes
``docs/status-page.png`` (desktop) and ``docs/status-page-phone.png``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.async_api import Browser, Page
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.status_page import BuiltinStatusPage
from tests.browser.conftest import DESKTOP, DOCS, PHONE
from tests.support import free_port
from worker.status_page_config import StatusPageConfig
from worker.status_page_web import status_page_router, workflow_snapshot_source
from workflows.contracts import ComponentStatus, PublicStatus, StatusImpact, StatusPublication
from workflows.status_page import StatusPageWorkflow

MAJOR = ComponentStatus.MAJOR_OUTAGE
OP = ComponentStatus.OPERATIONAL


def shop_config(now: datetime) -> StatusPageConfig:
    return StatusPageConfig.model_validate(
        {
            "title": "Example Shop Status",
            "groups": [{"id": "shop", "name": "Shop"}],
            "components": [
                {"id": "checkout", "name": "Checkout", "group": "shop"},
                {"id": "payments-api", "name": "Payments API", "group": "shop"},
                {"id": "website", "name": "Website", "description": "www.example.com"},
            ],
            "maintenance": [
                {
                    "title": "Payment provider migration",
                    "components": ["payments-api"],
                    "starts_at": (now + timedelta(days=2)).isoformat(),
                    "ends_at": (now + timedelta(days=2, hours=2)).isoformat(),
                    "body": "Card payments may be delayed by a few minutes.",
                }
            ],
        }
    )


class Clock:
    """The router's clock, following the time-skipping server's."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def status_url(own_time_env: WorkflowEnvironment, task_queue: str) -> AsyncIterator[str]:
    """A status page with two past incidents and one in progress, served on loopback.

    On a time-skipping server of its own: 60 skipped days should not move a shared clock.
    """
    time_env = own_time_env
    client = time_env.client
    workflow_id = f"status-page-{uuid.uuid4()}"
    start = await time_env.get_current_time()
    clock = Clock(start)
    # Config built against the clock the page will be read at (after the history below).
    config = shop_config(start + timedelta(days=60))
    publisher = BuiltinStatusPage(
        client, task_queue=task_queue, start_input=config.start_input(), workflow_id=workflow_id
    )

    async def publish(incident: str, n: int, **fields: Any) -> None:
        await publisher.publish(
            StatusPublication(
                incident_id=incident,
                update_id=f"{incident}-u{n}",
                at=await time_env.get_current_time(),
                **fields,
            )
        )

    async with Worker(client, task_queue=task_queue, workflows=[StatusPageWorkflow]):
        await client.start_workflow(
            StatusPageWorkflow.run, config.start_input(), id=workflow_id, task_queue=task_queue
        )
        await time_env.sleep(timedelta(days=12))
        website = {
            "title": "Website slow to load",
            "impact": StatusImpact.MINOR,
            "components": {"website": ComponentStatus.PARTIAL_OUTAGE},
        }
        await publish(
            "INC-3", 1, status=PublicStatus.INVESTIGATING, body="Pages load slowly.", **website
        )
        await time_env.sleep(timedelta(hours=5))
        await publish(
            "INC-3",
            2,
            **{**website, "components": {"website": OP}},
            status=PublicStatus.RESOLVED,
            body="Page loads are back to normal.",
        )
        await time_env.sleep(timedelta(days=30))
        payments = {
            "title": "Card payments failing",
            "impact": StatusImpact.MAJOR,
            "components": {"payments-api": MAJOR},
        }
        await publish(
            "INC-7", 1, status=PublicStatus.INVESTIGATING, body="Card payments fail.", **payments
        )
        await time_env.sleep(timedelta(hours=2))
        await publish(
            "INC-7",
            2,
            **{**payments, "components": {"payments-api": OP}},
            status=PublicStatus.RESOLVED,
            body="Payments work again.",
        )
        await time_env.sleep(timedelta(days=18))
        checkout = {
            "title": "Checkout failures",
            "impact": StatusImpact.CRITICAL,
            "components": {"checkout": MAJOR},
        }
        await publish(
            "INC-42",
            1,
            status=PublicStatus.INVESTIGATING,
            body="Some customers cannot complete checkout. We are investigating.",
            **checkout,
        )
        await time_env.sleep(timedelta(minutes=25))
        await publish(
            "INC-42",
            2,
            status=PublicStatus.IDENTIFIED,
            body="A faulty release was identified and is being rolled back.",
            **checkout,
        )
        clock.now = await time_env.get_current_time()

        app = FastAPI()
        app.include_router(
            status_page_router(workflow_snapshot_source(client, workflow_id), config, now=clock)
        )
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        )
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{port}/status"
        finally:
            server.should_exit = True
            await serving
            await client.get_workflow_handle(workflow_id).terminate("test over")


async def open_page(browser: Browser, url: str, viewport: dict[str, int]) -> Page:
    context = await browser.new_context(viewport=viewport)  # type: ignore[arg-type]
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None
    assert response.status == 200
    return page


async def check_content(page: Page) -> None:
    assert await page.locator("#overall").inner_text() == "Major System Outage"
    for name in ("Checkout", "Payments API", "Website"):
        assert await page.locator(".component .name", has_text=name).is_visible()
    assert await page.locator("#component-checkout").get_attribute("data-status") == "major_outage"
    assert await page.locator("#component-website").get_attribute("data-status") == "operational"
    incident = page.locator("#incident-INC-42")
    assert await incident.locator("h3").inner_text() == "Checkout failures"
    updates = await incident.locator(".update p").all_inner_texts()
    assert updates == [
        "A faulty release was identified and is being rolled back.",
        "Some customers cannot complete checkout. We are investigating.",
    ]
    assert await page.locator("#incident-INC-7").is_visible()  # a past incident
    assert await page.get_by_text("Payment provider migration").is_visible()


async def test_status_page_on_a_desktop(browser: Browser, status_url: str) -> None:
    page = await open_page(browser, status_url, DESKTOP)
    await check_content(page)
    bars = page.locator("#component-checkout .bars span")
    assert await bars.count() == 90
    visible = [await bars.nth(i).is_visible() for i in (0, 89)]
    assert visible == [True, True]
    # The outage 18 days ago shows on the payments API's bars.
    day = page.locator("#component-payments-api .bars span").nth(89 - 18)
    assert await day.get_attribute("class") == "d-major_outage"
    DOCS.mkdir(exist_ok=True)
    await page.screenshot(path=str(DOCS / "status-page.png"), full_page=True)


async def test_status_page_on_a_phone(browser: Browser, status_url: str) -> None:
    page = await open_page(browser, status_url, PHONE)
    await check_content(page)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"]
    # Phones show the last 30 days, so each bar stays wide enough to see.
    bars = page.locator("#component-checkout .bars span")
    assert not await bars.nth(0).is_visible()
    assert await bars.nth(89).is_visible()
    await page.screenshot(path=str(DOCS / "status-page-phone.png"), full_page=True)

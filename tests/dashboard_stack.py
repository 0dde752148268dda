"""A running fireline for dashboard tests: API + dashboard on a loopback port, a real worker.

Token mode (alice, bob and carol each have an API token), carol is paged for checkout
incidents through the console inbox, and a small runbook library whose steps are approval
gates, so a run waits for the commander without touching any cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.support import demo_config, eventually, free_port
from worker.api import create_app
from worker.config import FirelineConfig
from worker.process import api_server
from worker.runner import build_worker
from worker.settings import Settings
from worker.ui.live import LiveFeed
from worker.wiring import activities

TOKENS = {"alice": "alice-dashboard-token", "bob": "bob-dashboard-token", "carol": "carol-token"}
SECRET = b"dashboard-tests-ack-secret"

TWO_GATES = """\
name: two-gates
description: Two approvals in a row, for the dashboard tests.
steps:
  - id: first
    kind: approval
    approvers: {roles: [commander]}
    prompt: Roll back {incident.id} to the last good release?
  - id: second
    kind: approval
    approvers: {users: [bob]}
    prompt: Scale the canary back up?
"""


def dashboard_config() -> FirelineConfig:
    """The demo people and services, API tokens, and a policy paging carol for checkout."""
    raw = demo_config().model_dump(mode="json", exclude_unset=True)
    raw["auth"] = {
        "tokens": [
            {"user": user, "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
            for user, token in TOKENS.items()
        ]
    }
    raw["escalation_policies"] = {
        "checkout-pager": {"levels": [{"targets": [{"user": "carol"}], "delay": "1h"}]}
    }
    raw["services"]["checkout"]["escalation_policy"] = "checkout-pager"
    return FirelineConfig.model_validate(raw)


def bearer(user: str) -> dict[str, str]:
    """API headers of ``user``."""
    return {"Authorization": f"Bearer {TOKENS[user]}"}


@dataclass
class Stack:
    """Where the dashboard answers, and its live feed (to watch streams come and go)."""

    url: str
    feed: LiveFeed
    api: httpx.AsyncClient

    async def declare(self, title: str = "Checkout errors", **body: Any) -> str:
        """Declare an incident through the API as alice (commander: bob)."""
        payload = {
            "title": title,
            "service": "checkout",
            "severity": "SEV2",
            "commander": "bob",
            **body,
        }
        response = await self.api.post("/v1/incidents", json=payload, headers=bearer("alice"))
        assert response.status_code == 201, response.text
        incident_id: str = response.json()["id"]
        return incident_id

    async def state(self, incident_id: str) -> dict[str, Any]:
        """The incident as the API returns it."""
        response = await self.api.get(f"/v1/incidents/{incident_id}", headers=bearer("alice"))
        assert response.status_code == 200, response.text
        state: dict[str, Any] = response.json()
        return state

    async def start_run(self, incident_id: str) -> str:
        """Start the two-gates runbook (dry run) and wait until it asks for ``first``."""
        response = await self.api.post(
            f"/v1/incidents/{incident_id}/runs",
            json={"runbook": "two-gates", "dry_run": True},
            headers=bearer("alice"),
        )
        assert response.status_code == 201, response.text
        run_id: str = response.json()["run_id"]
        await self.waiting_on(incident_id, run_id, "first")
        return run_id

    async def waiting_on(self, incident_id: str, run_id: str, step: str) -> None:
        """Wait until the run's pending approval is ``step``."""

        async def check() -> None:
            response = await self.api.get(
                f"/v1/incidents/{incident_id}/runs/{run_id}", headers=bearer("alice")
            )
            pending = response.json()["pending"]
            assert pending is not None, "no approval pending yet"
            assert pending["step_id"] == step, pending

        await eventually(check)


@contextlib.asynccontextmanager
async def dashboard_stack(
    client: Client, task_queue: str, tmp: Path, *, poll_interval: float = 0.2
) -> AsyncIterator[Stack]:
    """Serve API + dashboard on 127.0.0.1 with a worker on ``task_queue``."""
    config = dashboard_config()
    library = tmp / "runbooks"
    library.mkdir()
    (library / "two-gates.yaml").write_text(TWO_GATES)
    settings = Settings(state_dir=tmp / "state", runbooks_dir=library)
    feed = LiveFeed(poll_interval=poll_interval, max_duration=20.0)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FIRELINE_RUNBOOKS_DIR", str(library))  # create_app's runbook library
        app = create_app(config, client, task_queue, ack_secret=SECRET, live=feed)
    port = free_port()
    server = api_server(app, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    async with build_worker(client, task_queue, activities(client, config, task_queue, settings)):
        serving = asyncio.create_task(server.serve())
        while not server.started:
            assert not serving.done(), "the API did not start"
            await asyncio.sleep(0.05)
        try:
            async with httpx.AsyncClient(base_url=url, timeout=20.0) as api:
                yield Stack(url, feed, api)
        finally:
            server.should_exit = True
            await serving


def hidden(html: str, name: str) -> str:
    """The value of the hidden input ``name`` in ``html``."""
    found = re.search(rf'name="{re.escape(name)}" value="([^"]+)"', html)
    assert found, f"no hidden field {name} in the page"
    return found.group(1)


async def log_in(http: httpx.AsyncClient, user: str) -> httpx.Response:
    """Log ``http`` in to the dashboard with ``user``'s API token."""
    form = await http.get("/ui/login")
    assert form.status_code == 200, form.text
    return await http.post(
        "/ui/login",
        data={"login_csrf": hidden(form.text, "login_csrf"), "token": TOKENS[user], "next": "/ui"},
    )

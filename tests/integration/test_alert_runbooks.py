"""An alert whose labels match a runbook starts it with the incident: params from labels."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.support import eventually
from worker.api import create_app
from worker.config import FirelineConfig
from worker.drills import DrillAlert, DrillScenario
from worker.runner import build_worker
from worker.settings import Settings
from worker.wiring import activities

pytestmark = pytest.mark.integration

TASK_QUEUE = "fireline-alert-runbook-tests"
ALICE = {"X-Fireline-User": "alice"}

GATE = """\
name: deploy-gate
description: Matched by DeployBroke alerts; waits for the commander.
match: ['alertname="DeployBroke"']
parameters:
  deployment: {type: string, required: true}
steps:
  - id: approve
    kind: approval
    approvers: {roles: [commander]}
    prompt: Roll back {params.deployment}?
"""

NEEDS_REGION = """\
name: needs-region
match: ['alertname="DeployBroke"']
parameters:
  region: {type: string, required: true}
steps:
  - id: approve
    kind: approval
    approvers: {roles: [commander]}
    prompt: Shift traffic away from {params.region}?
"""


def config() -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {"alice": {"name": "Alice Example", "email": "alice@example.com"}},
            "services": {"gate-demo": {}, "drill-demo": {}},
            "routing": {
                "group_by": ["service", "alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "service": "{labels.service}",
                "declare": {"min_severity": "critical"},
            },
        }
    )


@pytest.fixture(scope="module")
async def api(
    dev_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    library: Path = tmp_path_factory.mktemp("runbooks")
    (library / "deploy-gate.yaml").write_text(GATE)
    (library / "needs-region.yaml").write_text(NEEDS_REGION)
    cfg = config()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("FIRELINE_RUNBOOKS_DIR", str(library))
        settings = Settings(state_dir=tmp_path_factory.mktemp("state"))
        acts = activities(dev_client, cfg, TASK_QUEUE, settings)
        app = create_app(cfg, dev_client, TASK_QUEUE)
    async with (
        build_worker(dev_client, TASK_QUEUE, acts),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://fireline"
        ) as http,
    ):
        yield http


async def test_a_matching_alert_starts_its_runbook_with_params_from_labels(
    api: httpx.AsyncClient,
) -> None:
    alert = {
        "labels": {
            "alertname": "DeployBroke",
            "service": "gate-demo",
            "severity": "critical",
            "deployment": "checkout-api",
        },
        "annotations": {"summary": "5xx after the 14:02 deploy"},
    }
    response = await api.post("/v1/alerts", json=alert, headers=ALICE)
    assert response.status_code == 200, response.text

    async def started() -> dict[str, Any]:
        listed = (await api.get("/v1/incidents?service=gate-demo", headers=ALICE)).json()
        assert listed, "no incident yet"
        incident = listed[0]["id"]
        runs = (await api.get(f"/v1/incidents/{incident}/runs", headers=ALICE)).json()
        assert [r["runbook"] for r in runs] == ["deploy-gate"], runs
        state: dict[str, Any] = (
            await api.get(f"/v1/incidents/{incident}/runs/{runs[0]['run_id']}", headers=ALICE)
        ).json()
        assert state["pending"] is not None, state
        return {"incident": incident, "run": runs[0], "state": state}

    found = await eventually(started, timeout=30)
    assert found["run"]["started_by"] == "fireline"
    assert found["state"]["pending"]["prompt"] == "Roll back checkout-api?"
    incident = (await api.get(f"/v1/incidents/{found['incident']}", headers=ALICE)).json()
    texts = [e["text"] for e in incident["timeline"]]
    assert any("fireline started runbook deploy-gate" in t for t in texts), texts
    # The other matching runbook cannot start without a region label: said, not dropped.
    assert any(
        "runbook needs-region, which cannot start" in t and "parameter 'region' is required" in t
        for t in texts
    ), texts


async def test_a_drills_alerts_declare_an_incident_marked_as_a_drill(
    api: httpx.AsyncClient,
) -> None:
    scenario = DrillScenario(
        name="practice",
        alerts=[
            DrillAlert(
                labels={
                    "alertname": "PracticeDown",
                    "service": "drill-demo",
                    "severity": "critical",
                },
                annotations={"summary": "practice makes calm"},
            )
        ],
    )
    for alert in scenario.payloads():
        assert (await api.post("/v1/alerts", json=alert, headers=ALICE)).status_code == 200

    async def declared() -> dict[str, Any]:
        listed = (await api.get("/v1/incidents?service=drill-demo", headers=ALICE)).json()
        assert listed, "no incident yet"
        incident: dict[str, Any] = (
            await api.get(f"/v1/incidents/{listed[0]['id']}", headers=ALICE)
        ).json()
        return incident

    incident = await eventually(declared, timeout=30)
    assert incident["drill"] is True
    assert incident["title"].startswith("[DRILL] ")
    assert incident["timeline"][1]["text"] == "this is a drill: practice, not an outage"

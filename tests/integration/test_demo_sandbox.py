"""`fireline up --demo`'s sandbox: a cluster reached through its kubeconfig with the official
client, and a metrics source whose answer follows what the cluster runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import ActivityEnvironment

from activities.contracts import ActionRequest
from activities.kubernetes.actions import KubernetesActions
from tests.support import demo_config
from worker.demo import (
    BAD_RATIO,
    CLUSTER,
    DEPLOYMENT,
    GOOD_RATIO,
    NAMESPACE,
    Sandbox,
    start_sandbox,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[Sandbox]:
    running = await start_sandbox(tmp_path)
    try:
        yield running
    finally:
        await running.stop()


async def ratio(sandbox: Sandbox) -> float:
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{sandbox.metrics_url}/api/v1/query", data={"query": "sum(rate(x[2m]))"}
        )
    body = response.json()
    assert body["status"] == "success", body
    [sample] = body["data"]["result"]
    return float(sample["value"][1])


async def test_rolling_the_sandbox_back_brings_its_error_ratio_down(sandbox: Sandbox) -> None:
    config = sandbox.configure(demo_config())
    assert set(config.clusters) == {CLUSTER}
    assert config.metrics["prometheus"].url == sandbox.metrics_url
    assert await ratio(sandbox) == BAD_RATIO  # the seeded release crash-loops

    actions = KubernetesActions.for_cluster(CLUSTER, config.clusters[CLUSTER])
    actions.connect()  # through the written kubeconfig, as for a real cluster
    request = ActionRequest(
        incident_id="INC-1",
        run_id="INC-1-r1",
        step_id="rollback",
        idempotency_key="INC-1-r1/rollback/1",
        inputs={"namespace": NAMESPACE, "deployment": DEPLOYMENT, "from_revision": 2},
    )
    result = await ActivityEnvironment().run(actions.rollback, request)
    assert result.output["rolled_back_to"] == 1
    assert await ratio(sandbox) == GOOD_RATIO


async def test_a_query_without_text_is_a_400_in_prometheus_words(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{sandbox.metrics_url}/api/v1/query", data={})
    assert response.status_code == 400
    assert response.json()["errorType"] == "bad_data"

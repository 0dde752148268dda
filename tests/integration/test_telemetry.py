"""fireline observing itself: Prometheus metrics from the SDK runtime and fireline's own,
and OpenTelemetry spans through temporalio.contrib.opentelemetry.

A real page goes out through the console pager and a real runbook approval is decided; the
worker's metrics endpoint is then scraped over HTTP, as Prometheus would.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.contracts import ContactKind
from activities.notify import NotifyActivities
from activities.providers.console import ConsoleNotifier
from runbooks.schema import Runbook
from tests.runbook_harness import Script, declare_incident, start_run, world_worker
from tests.support import eventually, free_port, time_skipping_server
from worker import telemetry
from worker.config import FirelineConfig
from worker.settings import Settings
from workflows.contracts import ApprovalDecision, DeclareIncident, Severity
from workflows.escalation_workflow import EscalationWorkflow
from workflows.incident import IncidentWorkflow
from workflows.runbook import RunbookWorkflow

METRICS_PORT = free_port()

APPROVE_ONLY = Runbook.model_validate(
    {
        "name": "approve-only",
        "steps": [
            {
                "id": "approve",
                "kind": "approval",
                "approvers": {"roles": ["commander"]},
                "prompt": "Go ahead?",
            }
        ],
    }
)


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """A test server whose client runs on the runtime fireline builds from its settings."""
    runtime = telemetry.runtime(Settings(metrics_address=f"127.0.0.1:{METRICS_PORT}"))
    assert runtime is not None
    async with time_skipping_server(runtime=runtime) as server:
        yield server


async def scrape() -> str:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{METRICS_PORT}/metrics")
    response.raise_for_status()
    return response.text


def paging_config() -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {"alice": {"name": "Alice Example", "email": "alice@example.com"}},
            "escalation_policies": {
                "checkout": {"levels": [{"targets": [{"user": "alice"}], "delay": "1h"}]}
            },
            "services": {"checkout": {"escalation_policy": "checkout"}},
        }
    )


async def declare_paging_incident(client: Client, queue: str) -> WorkflowHandle[Any, Any]:
    """A SEV1 on checkout that pages alice through the console at once."""
    incident_id = f"INC-{uuid.uuid4().int % 10**6}"
    return await client.start_workflow(
        IncidentWorkflow.run,
        DeclareIncident(
            id=incident_id,
            title="Checkout errors",
            service="checkout",
            severity=Severity.SEV1,
            config=paging_config().snapshot("checkout", incident_id),
        ),
        id=f"incident-{incident_id}",
        task_queue=queue,
    )


async def test_pages_are_counted_by_provider_action_and_outcome(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    queue = f"tq-{uuid.uuid4()}"
    notify = NotifyActivities({ContactKind.CONSOLE: ConsoleNotifier(tmp_path / "inbox")})
    async with Worker(
        env.client,
        task_queue=queue,
        workflows=[IncidentWorkflow, EscalationWorkflow],
        activities=[notify.send],
    ):
        handle = await declare_paging_incident(env.client, queue)

        async def paged() -> str:
            text = await scrape()
            assert 'fireline_pages_total{action="trigger"' in text
            return text

        text = await eventually(paged)
        await handle.terminate("test over")
    line = next(line for line in text.splitlines() if line.startswith("fireline_pages_total{"))
    assert 'outcome="delivered"' in line
    assert 'provider="console"' in line
    assert line.endswith(" 1")
    # The SDK's own series come from the same endpoint.
    assert "temporal_workflow_task_execution_latency_seconds" in text
    assert "temporal_activity_execution_latency_seconds" in text


async def test_approval_latency_is_a_histogram_by_runbook_and_decision(
    env: WorkflowEnvironment,
) -> None:
    queue = f"tq-{uuid.uuid4()}"
    async with world_worker(env.client, queue, Script()):
        incident = await declare_incident(env.client, queue)
        run = await start_run(env.client, incident, queue, APPROVE_ONLY)

        async def waiting() -> None:
            assert (await run.query(RunbookWorkflow.state)).pending is not None

        await eventually(waiting)
        await run.execute_update(
            RunbookWorkflow.decide, ApprovalDecision(step_id="approve", approve=True, actor="alice")
        )
        await run.result()

    async def recorded() -> str:
        text = await scrape()
        assert "fireline_approval_latency_seconds_count{" in text
        return text

    text = await eventually(recorded)
    count = next(
        line
        for line in text.splitlines()
        if line.startswith("fireline_approval_latency_seconds_count{")
    )
    assert 'runbook="approve-only"' in count
    assert 'decision="approved"' in count
    assert 'by="person"' in count
    assert count.endswith(" 1")


async def test_spans_cover_the_client_call_the_workflow_and_its_activities(
    env: WorkflowEnvironment, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing = TracingInterceptor(provider.get_tracer("fireline-test"))
    config = env.client.config()
    config["interceptors"] = [tracing]
    client = Client(**config)
    queue = f"tq-{uuid.uuid4()}"
    notify = NotifyActivities({ContactKind.CONSOLE: ConsoleNotifier(tmp_path / "inbox")})
    async with Worker(
        client,
        task_queue=queue,
        workflows=[IncidentWorkflow, EscalationWorkflow],
        activities=[notify.send],
    ):
        handle = await declare_paging_incident(client, queue)

        async def traced() -> set[str]:
            names = {span.name for span in exporter.get_finished_spans()}
            assert "RunActivity:notify.send" in names, names
            return names

        names = await eventually(traced)
        await handle.terminate("test over")
    assert "StartWorkflow:IncidentWorkflow" in names
    assert "RunWorkflow:IncidentWorkflow" in names
    assert "StartChildWorkflow:EscalationWorkflow" in names


def test_without_settings_there_is_no_exporter_and_no_tracing() -> None:
    assert telemetry.tracing_interceptors(Settings()) == []
    assert telemetry.runtime(Settings()) is None

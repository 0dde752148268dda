"""A check step's measurement against a real Prometheus scraping a metric source.

The chain is the one a runbook's check runs in production: gauges exported at /metrics,
scraped by the Debian package's Prometheus every second, queried by ``metrics.query`` over
the HTTP API, judged by ``runbooks.substitution.assess_measurement``. No Alertmanager: a
check only reads. One Prometheus serves the module; each test uses its own series.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.contracts import MetricQuery, MetricSample
from activities.http import PermanentHttpError
from activities.http_actions import Endpoint, StepError
from activities.metrics import MetricsActivities
from runbooks.schema import CheckStep, Runbook
from runbooks.substitution import AnalysisPhase, assess_measurement
from tests.e2e.harness import MetricSource, MissingBinary, Prometheus, prometheus_binary
from tests.runbook_harness import declare_incident, incident_state, start_run
from tests.support import eventually
from workflows.contracts import IncidentStatus, RunbookRunState
from workflows.escalation_workflow import EscalationWorkflow
from workflows.incident import IncidentWorkflow
from workflows.runbook import RunbookWorkflow

pytestmark = pytest.mark.e2e

RATIO = "fireline_e2e_error_ratio"


@dataclass
class Scraped:
    """A metric source and the Prometheus scraping it."""

    source: MetricSource
    prometheus: Prometheus


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scraped]:
    try:
        prometheus_binary()
    except MissingBinary as exc:
        pytest.fail(str(exc), pytrace=False)
    with contextlib.ExitStack() as cleanup:
        source = cleanup.enter_context(MetricSource())
        # Exported before the first scrape, so wait_until_wired means it is in the TSDB.
        source.set(RATIO, 0.0, {"service": "warmup"})
        prometheus = Prometheus(
            workdir=tmp_path_factory.mktemp("prometheus"), scrape_targets=[source.target]
        )
        cleanup.callback(prometheus.stop)
        prometheus.start()
        prometheus.wait_until_wired()
        yield Scraped(source, prometheus)


@pytest.fixture
async def metrics(scraped: Scraped) -> AsyncIterator[MetricsActivities]:
    async with httpx.AsyncClient() as client:
        sources = {"prometheus": Endpoint(scraped.prometheus.url)}
        yield MetricsActivities(client=client, sources=sources)


async def measure(metrics: MetricsActivities, query: str) -> MetricSample:
    sample: MetricSample = await ActivityEnvironment().run(metrics.query, MetricQuery(query=query))
    return sample


async def scraped_values(
    scraped: Scraped, metrics: MetricsActivities, query: str, expected: list[float]
) -> MetricSample:
    """The first measurement showing ``expected``, once Prometheus has scraped it."""

    async def check() -> MetricSample:
        sample = await measure(metrics, query)
        assert sample.values == expected
        return sample

    return await scraped.prometheus.wait_until_async(
        check, what=f"{query} = {expected}", timeout=20
    )


def check_step(query: str) -> CheckStep:
    return CheckStep.model_validate(
        {
            "id": "error-rate-ok",
            "kind": "check",
            "query": query,
            "success_condition": "result[0] < 0.05",
        }
    )


async def test_values_are_what_the_source_exported(
    scraped: Scraped, metrics: MetricsActivities
) -> None:
    for pod, value in (("web-1", 0.25), ("web-0", 0.5), ("web-2", 0.125)):
        scraped.source.set(RATIO, value, {"service": "search", "pod": pod})
    query = f'{RATIO}{{service="search"}}'

    sample = await scraped_values(scraped, metrics, query, [0.5, 0.25, 0.125])

    assert sample.result_type == "vector"
    common = {
        "__name__": RATIO,
        "instance": scraped.source.target,
        "job": "metrics",
        "service": "search",
    }
    assert sample.labels == [{**common, "pod": f"web-{i}"} for i in range(3)]


async def test_the_check_passes_then_fails_as_the_error_ratio_moves(
    scraped: Scraped, metrics: MetricsActivities
) -> None:
    check = check_step(f'max({RATIO}{{service="checkout"}})')

    scraped.source.set(RATIO, 0.01, {"service": "checkout", "pod": "web-0"})
    healthy = await scraped_values(scraped, metrics, check.query, [0.01])
    assert assess_measurement(check, healthy.values) is AnalysisPhase.SUCCESSFUL

    scraped.source.set(RATIO, 0.2, {"service": "checkout", "pod": "web-1"})
    breached = await scraped_values(scraped, metrics, check.query, [0.2])
    assert assess_measurement(check, breached.values) is AnalysisPhase.FAILED


async def test_no_series_is_inconclusive_and_nan_fails(metrics: MetricsActivities) -> None:
    absent = await measure(metrics, f'{RATIO}{{service="nonexistent"}}')
    nan = await measure(metrics, "vector(0) / 0")

    assert (absent.values, absent.labels) == ([], [])
    assert assess_measurement(check_step(absent.query), absent.values) is (
        AnalysisPhase.INCONCLUSIVE
    )
    assert len(nan.values) == 1
    assert math.isnan(nan.values[0])
    assert assess_measurement(check_step(nan.query), nan.values) is AnalysisPhase.FAILED


async def test_real_prometheus_errors_are_classified(metrics: MetricsActivities) -> None:
    with pytest.raises(ApplicationError) as broken:
        await measure(metrics, f"rate({RATIO}[5m")
    with pytest.raises(ApplicationError) as ranged:
        await measure(metrics, f"{RATIO}[1m]")

    assert isinstance(broken.value, PermanentHttpError)
    assert broken.value.message.startswith(
        f"prometheus 'prometheus' query 'rate({RATIO}[5m' answered HTTP 400: "
        'invalid parameter "query": '
    )
    assert isinstance(ranged.value, StepError)
    assert ranged.value.type == "UnsupportedResult"


async def test_a_runbook_check_step_validates_recovery_against_real_prometheus(
    scraped: Scraped, metrics: MetricsActivities, dev_client: Client, task_queue: str
) -> None:
    """The whole check: RunbookWorkflow → metrics.query → real Prometheus → mitigated."""
    scraped.source.set(RATIO, 0.01, {"service": "orders", "pod": "web-0"})
    query = f'max({RATIO}{{service="orders"}})'
    await scraped_values(scraped, metrics, query, [0.01])
    runbook = Runbook.model_validate(
        {
            "name": "validate-orders",
            "steps": [
                {
                    "id": "validate",
                    "kind": "check",
                    "query": query,
                    "interval": "1s",
                    "count": 3,
                    "success_condition": "result[0] < 0.05",
                    "failure_condition": "len(result) == 0 || result[0] >= 0.2",
                }
            ],
        }
    )
    async with Worker(
        dev_client,
        task_queue=task_queue,
        workflows=[IncidentWorkflow, EscalationWorkflow, RunbookWorkflow],
        activities=metrics.activities(),
    ):
        incident = await declare_incident(dev_client, task_queue)
        run = await start_run(dev_client, incident, task_queue, runbook)
        final = RunbookRunState.model_validate(await run.result())
        assert final.status == "succeeded", final.error
        [check] = final.steps
        assert [m.values for m in check.measurements] == [[0.01]] * 3

        async def mitigated() -> None:
            assert (await incident_state(incident)).status is IncidentStatus.MITIGATED

        await eventually(mitigated)
        await incident.terminate("test over")

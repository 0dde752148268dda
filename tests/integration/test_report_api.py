"""Reports and the knowledge base against the real dev server and a real worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Header
from temporalio.client import Client

from tests.support import demo_config, eventually
from worker.api import _install_error_handlers, create_app
from worker.incident_records import RecordLoader
from worker.incident_service import IncidentService
from worker.report_api import report_router
from worker.report_metrics import ReportGauges, ReportMetricsRefresher
from worker.runner import build_worker

pytestmark = pytest.mark.integration

TASK_QUEUE = "fireline-report-tests"
ALICE = {"X-Fireline-User": "alice"}
BOB = {"X-Fireline-User": "bob"}


class Apis:
    """The incident API (to make history) and the report routes (to read it back)."""

    def __init__(self, incidents: httpx.AsyncClient, reports: httpx.AsyncClient) -> None:
        self.incidents = incidents
        self.reports = reports
        self.loader: RecordLoader | None = None


def _caller(x_fireline_user: Annotated[str, Header()]) -> str:
    return x_fireline_user


@pytest.fixture(scope="module")
async def apis(dev_client: Client) -> AsyncIterator[Apis]:
    config = demo_config()
    service = IncidentService(dev_client, config, TASK_QUEUE)
    loader = RecordLoader(service)
    reports = FastAPI()
    _install_error_handlers(reports)
    reports.include_router(report_router(loader, _caller))
    async with (
        build_worker(dev_client, TASK_QUEUE),
        _client(create_app(config, dev_client, TASK_QUEUE)) as incidents,
        _client(reports) as report_http,
    ):
        found = Apis(incidents, report_http)
        found.loader = loader
        yield found


def _client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fireline")


async def _post(
    api: httpx.AsyncClient, path: str, body: dict[str, Any], who: dict[str, str]
) -> Any:
    response = await api.post(path, json=body, headers=who)
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture(scope="module")
async def history(apis: Apis) -> dict[str, str]:
    """A resolved incident with a known answer, and a new one that looks like it."""
    first = await _post(
        apis.incidents,
        "/v1/incidents",
        {
            "title": "Checkout latency spike after deploy",
            "service": "checkout",
            "severity": "SEV2",
            "labels": {"region": "eu-west-1"},
        },
        ALICE,
    )
    inc = first["id"]
    await _post(apis.incidents, f"/v1/incidents/{inc}/acknowledge", {}, BOB)
    await _post(apis.incidents, f"/v1/incidents/{inc}/notes", {"text": "1.4.0 is slow"}, BOB)
    await _post(apis.incidents, f"/v1/incidents/{inc}/mitigate", {"summary": "rolled back"}, BOB)
    await _post(
        apis.incidents, f"/v1/incidents/{inc}/resolve", {"summary": "rolled back 1.4.0"}, BOB
    )
    # Closed: the workflow completes, and reports read it by querying a finished workflow.
    await _post(apis.incidents, f"/v1/incidents/{inc}/close", {}, BOB)
    second = await _post(
        apis.incidents,
        "/v1/incidents",
        {
            "title": "Checkout latency high again",
            "service": "checkout",
            "severity": "SEV3",
            "labels": {"region": "eu-west-1"},
        },
        ALICE,
    )
    return {"resolved": inc, "open": second["id"]}


async def test_the_report_shows_the_incident_in_mtta_and_mttr(
    apis: Apis, history: dict[str, str]
) -> None:
    async def check() -> dict[str, Any]:
        response = await apis.reports.get(
            "/v1/reports/summary", params={"since": "1h"}, headers=ALICE
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        rows = {t["id"]: t for t in body["incident_times"]}
        assert history["resolved"] in rows
        assert history["open"] in rows
        return body

    body = await eventually(check)
    row = next(t for t in body["incident_times"] if t["id"] == history["resolved"])
    assert row["status"] == "closed"
    assert row["time_to_ack_s"] is not None
    assert row["time_to_mitigate_s"] is not None
    assert row["time_to_resolve_s"] is not None
    assert row["time_to_ack_s"] <= row["time_to_mitigate_s"] <= row["time_to_resolve_s"]
    overall = body["overall"]
    assert overall["mtta_s"] is not None
    assert overall["mttr_resolution_s"] == pytest.approx(row["time_to_resolve_s"])
    checkout = next(s for s in body["services"] if s["service"] == "checkout")
    assert checkout["by_severity"]["SEV2"] >= 1


async def test_search_finds_the_past_incident_by_words_labels_and_service(
    apis: Apis, history: dict[str, str]
) -> None:
    async def check() -> list[str]:
        response = await apis.reports.get(
            "/v1/incidents/search",
            params=[("q", "latency 1.4.0"), ("label", "region=eu-west-1"), ("service", "checkout")],
            headers=ALICE,
        )
        assert response.status_code == 200, response.text
        ids = [h["id"] for h in response.json()]
        assert history["resolved"] in ids
        return ids

    ids = await eventually(check)
    # "1.4.0" is in the first incident's note and resolution only.
    assert history["open"] not in ids


async def test_a_new_incident_is_shown_the_similar_past_one(
    apis: Apis, history: dict[str, str]
) -> None:
    async def check() -> dict[str, Any]:
        response = await apis.reports.get(f"/v1/incidents/{history['open']}/similar", headers=ALICE)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["suggestions"], body
        return body

    body = await eventually(check)
    top = body["suggestions"][0]
    assert top["incident_id"] == history["resolved"]
    assert top["resolution_summary"] == "rolled back 1.4.0"
    assert "same service checkout" in top["explanation"]
    assert "region=eu-west-1" in top["explanation"]
    assert "latency" in top["reason"]["shared_words"]


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {"since": "1h", "until": "2h"},
            "the window is reversed: since ",
        ),
        ({"since": "yesterday"}, "since: 'yesterday' is neither a duration"),
        ({"since": "2026-01-01", "until": "2026-01-01"}, "the window is empty"),
    ],
)
async def test_bad_windows_are_clear_400s(apis: Apis, params: dict[str, str], reason: str) -> None:
    for path in ("/v1/reports/summary", "/v1/reports/alerts"):
        response = await apis.reports.get(path, params=params, headers=ALICE)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == "badrequest"
        assert response.json()["reason"].startswith(reason)


async def test_bad_search_label_is_a_400_naming_it(apis: Apis) -> None:
    response = await apis.reports.get(
        "/v1/incidents/search", params={"label": "region"}, headers=ALICE
    )
    assert response.status_code == 400
    assert response.json()["reason"] == "label: 'region' is not KEY=VALUE"


async def test_an_empty_window_is_an_honest_empty_report(apis: Apis) -> None:
    response = await apis.reports.get(
        "/v1/reports/summary",
        params={"since": "2020-01-01", "until": "2020-01-02"},
        headers=ALICE,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["incidents"] == 0
    assert body["overall"]["mtta_s"] is None
    assert body["empty_reason"] == (
        "no incidents were declared between 2020-01-01 00:00 and 2020-01-02 00:00 UTC"
    )


async def test_alert_report_answers(apis: Apis, history: dict[str, str]) -> None:
    response = await apis.reports.get("/v1/reports/alerts", params={"since": "1h"}, headers=ALICE)
    assert response.status_code == 200, response.text
    assert response.json()["quick_s"] == 600


async def test_refresher_fills_the_gauges(apis: Apis, history: dict[str, str]) -> None:
    assert apis.loader is not None
    gauges = ReportGauges()
    refresher = ReportMetricsRefresher(apis.loader, gauges)

    async def check() -> None:
        report = await refresher.refresh()
        assert history["resolved"] in {t.id for t in report.incident_times}

    await eventually(check)
    assert gauges.mtta.value("checkout") is not None
    assert 'fireline_incident_mttr_resolution_seconds{service="checkout"}' in gauges.render()

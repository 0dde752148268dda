"""Alert ingestion through the real API, worker and dev server: from webhook to incident."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.client import Client

from tests.support import eventually
from worker.alert_intake import AlertIntake, group_workflow_id
from worker.api import create_app
from worker.config import FirelineConfig
from worker.ingest import normalise_fireline
from worker.runner import build_worker
from worker.settings import Settings
from worker.wiring import activities
from workflows.alert_group import AlertGroupWorkflow
from workflows.routing import group_key, match_routes
from workflows.silences import SilenceStoreWorkflow, silence_store_id
from workflows.suppression import SilenceStoreInput

pytestmark = pytest.mark.integration

TASK_QUEUE = "fireline-alert-tests"
PAYLOADS = Path(__file__).resolve().parents[1] / "payloads"
ALICE = {"X-Fireline-User": "alice"}


def config(**extra: Any) -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {"alice": {"name": "Alice Example", "email": "alice@example.com"}},
            "teams": {"payments": {"members": ["alice"]}},
            "services": {
                "shop": {
                    "owner_team": "payments",
                    "tier": "tier-1",
                    "depends_on": ["orders-db"],
                },
                "orders-db": {"owner_team": "payments", "tier": "tier-1"},
                "storefront": {
                    "owner_team": "payments",
                    "tier": "tier-2",
                    "depends_on": ["orders-db"],
                },
            },
            # Alertmanager has already waited group_wait; fireline acts at once.
            "routing": {
                "group_by": ["service", "alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "service": "{labels.service}",
                "declare": {"enabled": False},
                "routes": [
                    {"matchers": ['severity="critical"'], "declare": {"min_severity": "critical"}}
                ],
            },
            "time_intervals": [{"name": "always", "time_intervals": [{}]}],
            "maintenance_windows": [
                {
                    "name": "batch-patching",
                    "matchers": ['service="batch"'],
                    "time_intervals": ["always"],
                }
            ],
            "inhibit_rules": [
                {
                    "name": "cluster-down-mutes-critical",
                    "source_matchers": ['alertname="ClusterDown"'],
                    "target_matchers": ['severity="critical"'],
                    "equal": ["cluster"],
                }
            ],
            **extra,
        }
    )


def _http(cfg: FirelineConfig, client: Client) -> httpx.AsyncClient:
    app = create_app(cfg, client, TASK_QUEUE)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fireline")


@pytest.fixture(scope="module")
async def api(
    dev_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[httpx.AsyncClient]:
    cfg = config()
    settings = Settings(state_dir=tmp_path_factory.mktemp("state"))
    async with (
        build_worker(dev_client, TASK_QUEUE, activities(dev_client, cfg, TASK_QUEUE, settings)),
        _http(cfg, dev_client) as http,
    ):
        yield http


def am_payload(
    *,
    service: str,
    alertname: str,
    severity: str = "critical",
    status: str = "firing",
    instance: str = "web-1",
) -> dict[str, Any]:
    labels = {
        "alertname": alertname,
        "service": service,
        "severity": severity,
        "instance": instance,
    }
    alert = {
        "status": status,
        "labels": labels,
        "annotations": {"summary": f"{alertname} on {service}"},
        "startsAt": "2026-11-27T09:00:00Z",
        "endsAt": "2026-11-27T09:05:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.com/graph",
        "fingerprint": hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16],
    }
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{alertname}"}}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "fireline",
        "groupLabels": {"alertname": alertname},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager.example.com",
        "alerts": [alert],
    }


async def incidents_for(api: httpx.AsyncClient, service: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = (
        await api.get("/v1/incidents", params={"service": service, "all": "true"}, headers=ALICE)
    ).json()
    return rows


async def test_a_critical_alert_declares_one_incident_and_redelivery_changes_nothing(
    api: httpx.AsyncClient,
) -> None:
    body = am_payload(service="shop", alertname="CheckoutErrors")
    first = await api.post("/v1/alerts/alertmanager", json=body)
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 1
    assert (await api.post("/v1/alerts/alertmanager", json=body)).status_code == 200

    async def declared() -> dict[str, Any]:
        rows = [
            r for r in await incidents_for(api, "shop") if r["title"].startswith("CheckoutErrors")
        ]
        assert len(rows) == 1, rows
        assert rows[0]["severity"] is not None  # classified and published by the workflow
        return rows[0]

    row = await eventually(declared)
    assert row["title"] == "CheckoutErrors: CheckoutErrors on shop"
    assert row["severity"] == "SEV1"  # critical → partial outage on a tier-1 service

    async def timeline_has_the_alert() -> list[dict[str, Any]]:
        state = (await api.get(f"/v1/incidents/{row['id']}", headers=ALICE)).json()
        alerts = [e for e in state["timeline"] if e["kind"] == "alert_firing"]
        assert len(alerts) == 1
        return state["timeline"]  # type: ignore[no-any-return]

    await eventually(timeline_has_the_alert)

    resolved = am_payload(service="shop", alertname="CheckoutErrors", status="resolved")
    assert (await api.post("/v1/alerts/alertmanager", json=resolved)).status_code == 200

    async def resolved_on_timeline() -> None:
        state = (await api.get(f"/v1/incidents/{row['id']}", headers=ALICE)).json()
        texts = [e["text"] for e in state["timeline"]]
        assert "alert CheckoutErrors resolved" in texts
        # SEV1: fireline says so but leaves resolving to a person.
        assert (
            texts[-1] == "all alerts resolved; still open: SEV1 incidents are resolved by a person"
        )
        assert state["status"] == "declared"

    await eventually(resolved_on_timeline)
    await eventually(declared)  # still exactly one incident


async def test_a_warning_is_grouped_and_recorded_without_an_incident(
    api: httpx.AsyncClient,
) -> None:
    body = am_payload(service="finder", alertname="SlowQueries", severity="warning")
    response = await api.post("/v1/alerts/alertmanager", json=body)
    assert response.status_code == 200
    assert response.json()["groups"] == 1
    assert await incidents_for(api, "finder") == []


async def test_an_alert_on_a_dependent_service_joins_the_open_incident_as_a_cascade(
    api: httpx.AsyncClient,
) -> None:
    db = (
        await api.post(
            "/v1/incidents",
            json={"title": "orders-db replication lag", "service": "orders-db", "severity": "SEV2"},
            headers=ALICE,
        )
    ).json()["id"]

    async def listed() -> None:
        assert [r["id"] for r in await incidents_for(api, "orders-db")] == [db]

    await eventually(listed)
    body = am_payload(service="storefront", alertname="StorefrontLatency")
    assert (await api.post("/v1/alerts/alertmanager", json=body)).status_code == 200

    async def attached() -> None:
        state = (await api.get(f"/v1/incidents/{db}", headers=ALICE)).json()
        texts = [e["text"] for e in state["timeline"]]
        assert "alerts attached as a likely cascade: storefront depends on orders-db" in texts
        assert "alert StorefrontLatency firing: StorefrontLatency on storefront" in texts

    await eventually(attached)
    assert await incidents_for(api, "storefront") == []  # no second team paged


async def test_a_mixed_batch_keeps_the_valid_alerts_and_names_the_bad_one(
    api: httpx.AsyncClient,
) -> None:
    body = am_payload(service="finder", alertname="IndexLag", severity="warning")
    bad = copy.deepcopy(body["alerts"][0])
    bad["labels"] = {"service": "search"}  # no alertname
    body["alerts"].append(bad)
    response = await api.post("/v1/alerts/alertmanager", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert payload["accepted"] == 1
    assert payload["groups"] == 1
    assert [r["index"] for r in payload["rejected"]] == [1]
    assert "alertname" in payload["rejected"][0]["reason"]


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        ("/v1/alerts/alertmanager", b"{not json", 422, "body"),
        ("/v1/alerts/alertmanager", b'{"version": "4"}', 422, "alerts"),
        ("/v1/alerts", b'{"labels": {"alertname": "X"}, "colour": 1}', 422, "colour"),
        ("/v2/enqueue", b'{"event_action": "trigger"}', 400, "routing_key"),
        (
            "/v2/enqueue",
            b'{"routing_key": "abcdefghijabcdefghijabcdefghij12", "event_action": "explode"}',
            400,
            "event_action",
        ),
    ],
)
async def test_bad_alert_bodies_are_4xx_with_the_reason(
    api: httpx.AsyncClient, path: str, body: bytes, status: int, fragment: str
) -> None:
    response = await api.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == status, response.text
    payload = response.json()
    text = json.dumps(payload)
    assert fragment in text
    if path == "/v2/enqueue":
        assert payload["status"] == "invalid event"
        assert payload["message"] == "Event object is invalid"


async def test_pagerduty_events_trigger_and_resolve_one_group(api: httpx.AsyncClient) -> None:
    event = {
        "routing_key": "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY12",
        "event_action": "trigger",
        "dedup_key": "payments-gateway-timeouts",
        "payload": {
            "summary": "Payment gateway timeouts above 2%",
            "source": "pay-gw-1.example.com",
            "severity": "critical",
            "component": "payments-api",
        },
    }
    accepted = await api.post("/v2/enqueue", json=event)
    assert accepted.status_code == 202
    assert accepted.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "payments-gateway-timeouts",
    }

    async def declared() -> None:
        rows = await incidents_for(api, "payments-api")
        assert len(rows) == 1
        assert "Payment gateway timeouts above 2%" in rows[0]["title"]

    await eventually(declared)
    resolve = {
        "routing_key": event["routing_key"],
        "event_action": "resolve",
        "dedup_key": "payments-gateway-timeouts",
    }
    assert (await api.post("/v2/enqueue", json=resolve)).status_code == 202
    await eventually(declared)  # the resolve joined the same group: still one incident


async def test_alert_counters_are_exposed(api: httpx.AsyncClient) -> None:
    def rejected(text: str) -> float:
        series = 'fireline_alerts_received_total{source="alertmanager",outcome="rejected"} '
        lines = [line for line in text.splitlines() if line.startswith(series)]
        return float(lines[0].removeprefix(series)) if lines else 0.0

    before = rejected((await api.get("/metrics")).text)
    assert (await api.post("/v1/alerts/alertmanager", content=b"[]")).status_code == 422
    assert rejected((await api.get("/metrics")).text) == before + 1


async def test_a_signed_delivery_is_accepted_and_a_forged_one_refused(
    dev_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FIRELINE_TEST_HMAC", "grafana-shared-secret")
    cfg = config(
        integrations={
            "grafana": {"kind": "alertmanager", "hmac_secret": {"env": "FIRELINE_TEST_HMAC"}}
        }
    )
    body = json.dumps(am_payload(service="finder", alertname="Signed", severity="info")).encode()
    good = hmac.new(b"grafana-shared-secret", body, hashlib.sha256).hexdigest()
    async with _http(cfg, dev_client) as api:
        headers = {"Content-Type": "application/json"}
        ok = await api.post(
            "/v1/alerts/alertmanager",
            content=body,
            headers={**headers, "X-Grafana-Alerting-Signature": good},
        )
        assert ok.status_code == 200, ok.text
        forged = await api.post(
            "/v1/alerts/alertmanager",
            content=body + b" ",
            headers={**headers, "X-Fireline-Signature": f"sha256={good}"},
        )
        assert forged.status_code == 401


async def test_integrations_require_their_credentials(dev_client: Client) -> None:
    digest = hashlib.sha256(b"am-token").hexdigest()
    cfg = config(integrations={"prod-am": {"kind": "alertmanager", "token": {"sha256": digest}}})
    async with _http(cfg, dev_client) as api:
        body = am_payload(service="finder", alertname="Noise", severity="info")
        missing = await api.post("/v1/alerts/alertmanager", json=body)
        assert missing.status_code == 401
        assert missing.json()["reason"].startswith(
            "no alertmanager integration accepts these credentials"
        )
        wrong = await api.post(
            "/v1/alerts/alertmanager", json=body, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        ok = await api.post(
            "/v1/alerts/alertmanager", json=body, headers={"Authorization": "Bearer am-token"}
        )
        assert ok.status_code == 200
        unknown_key = await api.post(
            "/v2/enqueue",
            json={
                "routing_key": "x" * 32,
                "event_action": "trigger",
                "payload": {"summary": "s", "source": "h", "severity": "info"},
            },
        )
        assert unknown_key.status_code == 400
        assert unknown_key.json()["errors"] == ["routing_key: no integration has this routing key"]


async def suppressed_reasons(dev_client: Client, labels: dict[str, str]) -> list[str]:
    [route] = match_routes(config().routing, labels)
    handle = dev_client.get_workflow_handle(group_workflow_id(group_key(route, labels)))
    state = await handle.query(AlertGroupWorkflow.state)
    return list(state.suppressed.values())


async def test_a_silence_mutes_matching_alerts_and_says_so(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    created = await api.post(
        "/v1/silences",
        json={"matchers": ['service="billing"'], "duration": "2h", "comment": "billing migration"},
        headers=ALICE,
    )
    assert created.status_code == 201, created.text
    silence = created.json()
    assert silence["created_by"] == "alice"
    listed = (await api.get("/v1/silences", headers=ALICE)).json()
    assert silence["id"] in [s["id"] for s in listed]

    body = am_payload(service="billing", alertname="InvoiceFailures")
    assert (await api.post("/v1/alerts/alertmanager", json=body)).status_code == 200
    labels = body["alerts"][0]["labels"]

    async def muted() -> None:
        reasons = await suppressed_reasons(dev_client, labels)
        assert len(reasons) == 1
        assert reasons[0].startswith(
            f'silenced by {silence["id"][:8]}… (alice: "billing migration"'
        )

    await eventually(muted)
    assert await incidents_for(api, "billing") == []

    expired = await api.delete(f"/v1/silences/{silence['id']}", headers=ALICE)
    assert expired.status_code == 200
    again = await api.delete(f"/v1/silences/{silence['id']}", headers=ALICE)
    assert again.status_code == 409
    missing = await api.delete("/v1/silences/no-such-silence", headers=ALICE)
    assert (missing.status_code, missing.json()["reason"]) == (
        404,
        "unknown silence 'no-such-silence'",
    )


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"matchers": ['service="x"'], "duration": "1h"}, 422, "comment: Field required"),
        ({"matchers": [], "duration": "1h", "comment": "c"}, 422, "matchers"),
        ({"matchers": ['service=~"("'], "duration": "1h", "comment": "c"}, 400, "service"),
        ({"matchers": ['service=~".*"'], "duration": "1h", "comment": "c"}, 400, "every alert"),
    ],
)
async def test_bad_silences_are_refused_with_the_reason(
    api: httpx.AsyncClient, body: dict[str, Any], status: int, fragment: str
) -> None:
    response = await api.post("/v1/silences", json=body, headers=ALICE)
    assert response.status_code == status, response.text
    assert fragment in response.json()["reason"]


async def test_a_maintenance_window_mutes_its_alerts(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    body = am_payload(service="batch", alertname="JobsLate")
    assert (await api.post("/v1/alerts/alertmanager", json=body)).status_code == 200

    async def muted() -> None:
        assert await suppressed_reasons(dev_client, body["alerts"][0]["labels"]) == [
            "in maintenance window 'batch-patching' (time interval 'always')"
        ]

    await eventually(muted)
    assert await incidents_for(api, "batch") == []


async def test_an_inhibiting_alert_mutes_its_targets(
    api: httpx.AsyncClient, dev_client: Client
) -> None:
    source = am_payload(service="k8s", alertname="ClusterDown", severity="warning")
    source["alerts"][0]["labels"]["cluster"] = "eu1"
    assert (await api.post("/v1/alerts/alertmanager", json=source)).status_code == 200
    target = am_payload(service="catalog", alertname="CatalogDown")
    target["alerts"][0]["labels"]["cluster"] = "eu1"
    assert (await api.post("/v1/alerts/alertmanager", json=target)).status_code == 200

    async def muted() -> None:
        [reason] = await suppressed_reasons(dev_client, target["alerts"][0]["labels"])
        assert reason.startswith("inhibited by ClusterDown")

    await eventually(muted)
    assert await incidents_for(api, "catalog") == []


async def test_a_silence_store_nobody_serves_does_not_hold_up_intake(dev_client: Client) -> None:
    # A store whose worker is gone (e.g. the task queue setting changed): queries hang.
    queue = f"nobody-polls-{uuid.uuid4().hex[:8]}"
    await dev_client.start_workflow(
        SilenceStoreWorkflow.run,
        SilenceStoreInput(),
        id=silence_store_id(queue),
        task_queue=queue,
        execution_timeout=timedelta(minutes=5),
    )
    intake = AlertIntake(dev_client, config(), queue)
    alert = normalise_fireline(
        {"labels": {"alertname": "Lonely", "service": "finder", "severity": "info"}},
        integration=None,
        received_at=datetime.now(UTC),
    ).accepted
    started = time.monotonic()
    summary = await intake.ingest(alert, datetime.now(UTC))
    # Bounded by the silence lookup's deadline, not by Alertmanager's webhook timeout.
    assert time.monotonic() - started < 8
    assert (summary.accepted, summary.suppressed) == (1, 0)

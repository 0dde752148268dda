"""Ingest payloads: Alertmanager/Grafana webhooks, PagerDuty events and fireline JSON.

Fixtures in ``tests/payloads/`` are written from the documented wire formats (Alertmanager's
``webhook_config``, Grafana's webhook notifier, PagerDuty's Events API v2) with fictional data.
"""

import copy
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from worker.errors import FirelineError
from worker.ingest import (
    CUSTOM_DETAILS_LIMIT,
    PAGERDUTY_RESOLVE_ALERTNAME,
    ZERO_TIME,
    IngestError,
    IngestResult,
    PagerDutyEvent,
    RejectedAlert,
    bearer_matches,
    derive_dedup_key,
    load_json,
    normalise_alertmanager,
    normalise_fireline,
    normalise_pagerduty,
    pagerduty_accepted,
    pagerduty_fingerprint,
    pagerduty_invalid,
    parse_pagerduty_event,
    parse_time,
    verify_hmac_sha256,
)
from workflows.alerts import AckRequest, Alert, AlertBatch, AlertSource, AlertStatus, fingerprint

PAYLOADS = Path(__file__).parent.parent / "payloads"
RECEIVED = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
ROUTING_KEY = "0123456789abcdef0123456789abcdef"


def payload(name: str) -> Any:
    return json.loads((PAYLOADS / name).read_text())


def am(body: Any, integration: str | None = "am-prod") -> IngestResult:
    return normalise_alertmanager(body, integration=integration, received_at=RECEIVED)


def pd(
    body: Any, *, service: str | None = "checkout", integration: str = "pd-checkout"
) -> IngestResult:
    return normalise_pagerduty(body, integration=integration, service=service, received_at=RECEIVED)


def fl(body: Any) -> IngestResult:
    return normalise_fireline(body, integration="cli", received_at=RECEIVED)


def ingest_errors(call: Any, *args: Any) -> tuple[int, list[str]]:
    with pytest.raises(IngestError) as caught:
        call(*args)
    return caught.value.status, caught.value.errors


# --- Alertmanager -------------------------------------------------------------------------


def test_alertmanager_firing_batch_maps_every_field() -> None:
    result = am(payload("alertmanager_firing.json"))
    assert result.rejected == []
    assert len(result.accepted) == 3
    assert result.accepted[0] == Alert(
        fingerprint="a93b19564dc7891a",
        status=AlertStatus.FIRING,
        labels={
            "alertname": "HighErrorRate",
            "instance": "checkout-1.example.com:9100",
            "job": "checkout",
            "service": "checkout",
            "severity": "critical",
        },
        annotations={
            "summary": "checkout-1 is failing 12% of requests",
            "runbook_url": "https://runbooks.example.com/checkout/high-error-rate",
        },
        # Nanoseconds past the microsecond are dropped, not rounded.
        starts_at=datetime(2024, 5, 1, 9, 58, 12, 345678, tzinfo=UTC),
        ends_at=None,
        generator_url=(
            "http://prometheus.example.com:9090/graph?"
            "g0.expr=job%3Acheckout_errors%3Aratio5m+%3E+0.05&g0.tab=1"
        ),
        source=AlertSource.ALERTMANAGER,
        integration="am-prod",
    )
    # +02:00 is converted to UTC.
    assert result.accepted[1].starts_at == datetime(2024, 5, 1, 9, 58, 40, tzinfo=UTC)
    # An empty generatorURL is Go's "absent".
    assert result.accepted[2].generator_url is None
    assert result.accepted[2].annotations == {}
    assert (
        result.source,
        result.integration,
        result.received_at,
        result.group_key,
        result.group_labels,
        result.receiver,
        result.external_url,
        result.truncated,
        result.acks,
        result.dedup_key,
    ) == (
        AlertSource.ALERTMANAGER,
        "am-prod",
        RECEIVED,
        '{}/{severity="critical"}:{alertname="HighErrorRate", service="checkout"}',
        {"alertname": "HighErrorRate", "service": "checkout"},
        "fireline",
        "http://alertmanager.example.com:9093",
        0,
        [],
        None,
    )


def test_alertmanager_fingerprints_are_kept_and_match_ours() -> None:
    for alert in am(payload("alertmanager_firing.json")).accepted:
        assert alert.fingerprint == fingerprint(alert.labels)


def test_alertmanager_without_fingerprint_gets_ours() -> None:
    body = payload("alertmanager_firing.json")
    del body["alerts"][0]["fingerprint"]
    body["alerts"][1]["fingerprint"] = ""
    accepted = am(body).accepted
    assert [a.fingerprint for a in accepted[:2]] == ["a93b19564dc7891a", "a1f061b28a091ab7"]


def test_alertmanager_sender_fingerprint_wins_over_ours() -> None:
    body = payload("alertmanager_firing.json")
    body["alerts"][0]["fingerprint"] = "feedfacecafebeef"
    assert am(body).accepted[0].fingerprint == "feedfacecafebeef"


def test_alertmanager_resolved_batch() -> None:
    result = am(payload("alertmanager_resolved.json"))
    assert [(a.status, a.starts_at, a.ends_at) for a in result.accepted] == [
        (
            AlertStatus.RESOLVED,
            datetime(2024, 5, 1, 8, 0, tzinfo=UTC),
            datetime(2024, 5, 1, 8, 45, 30, 500000, tzinfo=UTC),
        ),
        (
            AlertStatus.RESOLVED,
            datetime(2024, 5, 1, 8, 2, tzinfo=UTC),
            datetime(2024, 5, 1, 8, 46, tzinfo=UTC),
        ),
    ]
    assert result.accepted[0].summary() == "/var/lib/postgresql on db-1 is 93% full"


def test_alertmanager_truncated_batch_reports_the_count() -> None:
    result = am(payload("alertmanager_truncated.json"))
    assert (len(result.accepted), result.truncated, result.receiver) == (2, 3, "fireline-capped")
    assert result.response_body() == {"accepted": 2, "rejected": [], "truncated": 3}


def test_grafana_webhook_with_extra_fields_is_accepted() -> None:
    result = am(payload("grafana_firing.json"), integration="grafana")
    assert result.rejected == []
    memory, cpu = result.accepted
    assert memory == Alert(
        fingerprint="4f1c2b3a5d6e7f80",
        status=AlertStatus.FIRING,
        labels={
            "alertname": "High memory usage",
            "grafana_folder": "Payments",
            "team": "payments",
            "zone": "eu-1",
        },
        annotations={
            "description": "payments-api is using 94% of its memory limit",
            "runbook_url": "https://runbooks.example.com/payments/memory",
            "summary": "Memory pressure on payments-api in eu-1",
        },
        starts_at=datetime(2024, 5, 1, 8, 51, 3, 157076, tzinfo=UTC),
        generator_url="https://grafana.example.com/alerting/grafana/f1b2c3d4/view",
        source=AlertSource.ALERTMANAGER,
        integration="grafana",
    )
    assert (cpu.status, cpu.ends_at) == (
        AlertStatus.RESOLVED,
        datetime(2024, 5, 1, 8, 56, tzinfo=UTC),
    )
    assert (result.group_key, result.group_labels, result.external_url) == (
        "{}:{}",
        {},
        "https://grafana.example.com/",
    )


def test_mixed_batch_keeps_valid_alerts_and_reports_bad_ones_by_index() -> None:
    result = am(payload("alertmanager_mixed.json"))
    assert [a.fingerprint for a in result.accepted] == ["1111aaaa2222bbbb", "7777aaaa8888bbbb"]
    assert result.rejected == [
        RejectedAlert(
            index=1, reason="alerts[1].labels.partition: Input should be a valid string (got 7)"
        ),
        RejectedAlert(index=2, reason="alerts[2].labels: Field required"),
    ]
    assert result.response_body() == {
        "accepted": 2,
        "rejected": [
            {
                "index": 1,
                "reason": "alerts[1].labels.partition: Input should be a valid string (got 7)",
            },
            {"index": 2, "reason": "alerts[2].labels: Field required"},
        ],
        "truncated": 0,
    }


BASE_AM_ALERT: dict[str, Any] = {
    "status": "firing",
    "labels": {"alertname": "QueueBacklog", "service": "orders"},
    "annotations": {},
    "startsAt": "2024-05-01T10:00:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "",
    "fingerprint": "",
}


def am_alert(**changes: Any) -> dict[str, Any]:
    alert = copy.deepcopy(BASE_AM_ALERT)
    for key, value in changes.items():
        if value is None:
            alert.pop(key)
        else:
            alert[key] = value
    return alert


@pytest.mark.parametrize(
    ("alert", "reason"),
    [
        pytest.param(
            am_alert(labels={"service": "orders"}),
            "alerts[0].labels.alertname: Field required",
            id="no-alertname",
        ),
        pytest.param(
            am_alert(labels={"alertname": ""}),
            "alerts[0].labels.alertname: must not be empty",
            id="empty-alertname",
        ),
        pytest.param(
            am_alert(labels={"alertname": "X", "": "y"}),
            "alerts[0].labels: label names must not be empty",
            id="empty-label-name",
        ),
        pytest.param(
            am_alert(labels={"alertname": "X", "up": True}),
            "alerts[0].labels.up: Input should be a valid string (got true)",
            id="boolean-label",
        ),
        pytest.param(
            am_alert(labels={"alertname": "X", "owner": None}),
            "alerts[0].labels.owner: Input should be a valid string (got null)",
            id="null-label",
        ),
        pytest.param(
            am_alert(annotations={"value": 0.93}),
            "alerts[0].annotations.value: Input should be a valid string (got 0.93)",
            id="number-annotation",
        ),
        pytest.param(
            am_alert(status="pending"),
            "alerts[0].status: must be one of firing, resolved (got 'pending')",
            id="unknown-status",
        ),
        pytest.param(
            am_alert(startsAt=None), "alerts[0].startsAt: Field required", id="no-startsAt"
        ),
        pytest.param(
            am_alert(startsAt="0001-01-01T00:00:00Z"),
            "alerts[0].startsAt: must be set (got the zero time)",
            id="zero-startsAt",
        ),
        pytest.param(
            am_alert(startsAt="2024-05-01 10:00:00"),
            "alerts[0].startsAt: '2024-05-01 10:00:00' is not a time with an offset "
            "(e.g. 2024-05-01T12:00:00Z)",
            id="startsAt-without-offset",
        ),
        pytest.param(
            am_alert(startsAt=1714557600),
            "alerts[0].startsAt: must be a time as a string (got 1714557600)",
            id="epoch-startsAt",
        ),
        pytest.param(
            am_alert(endsAt="2024-05-01T11:00:00Z"),
            "alerts[0].endsAt: a firing alert has no end time (send 0001-01-01T00:00:00Z or "
            "leave it out; got 2024-05-01T11:00:00+00:00)",
            id="firing-with-end",
        ),
        pytest.param(
            am_alert(status="resolved"),
            "alerts[0].endsAt: a resolved alert needs an end time",
            id="resolved-at-zero-time",
        ),
        pytest.param(
            am_alert(fingerprint="not a fingerprint"),
            "alerts[0].fingerprint: must be 1-128 printable ASCII characters without spaces",
            id="fingerprint-with-spaces",
        ),
        pytest.param(
            am_alert(fingerprint=123),
            "alerts[0].fingerprint: Input should be a valid string (got 123)",
            id="numeric-fingerprint",
        ),
        pytest.param(
            "firing", "alerts[0]: must be an alert object (got a string)", id="not-an-object"
        ),
    ],
)
def test_alertmanager_alert_rejections(alert: Any, reason: str) -> None:
    good = am_alert(labels={"alertname": "Good"})
    result = am({"version": "4", "alerts": [alert, good]})
    assert result.rejected == [RejectedAlert(index=0, reason=reason)]
    assert [a.alertname for a in result.accepted] == ["Good"]


def test_alertmanager_rejection_lists_every_problem_of_an_alert() -> None:
    bad = am_alert(status="burning", labels=None, startsAt=3)
    assert am({"version": "4", "alerts": [bad]}).rejected == [
        RejectedAlert(
            index=0,
            reason="alerts[0].status: must be one of firing, resolved (got 'burning'); "
            "alerts[0].labels: Field required; "
            "alerts[0].startsAt: must be a time as a string (got 3)",
        )
    ]


def test_alertmanager_minimal_envelope_and_unknown_fields() -> None:
    alert = am_alert(silenceURL="https://grafana.example.com/silence", values={"B": 1})
    result = am({"version": "4", "alerts": [alert], "futureField": {"x": 1}})
    assert len(result.accepted) == 1
    assert (result.group_key, result.receiver, result.truncated) == (None, None, 0)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param(
            payload("alertmanager_wrong_version.json"),
            ['version: must be "4" (Alertmanager) or "1" (Grafana) (got \'3\')'],
            id="wrong-version",
        ),
        pytest.param(
            payload("alertmanager_missing_alerts.json"),
            ["alerts: Field required"],
            id="missing-alerts",
        ),
        pytest.param(
            payload("grafana_legacy.json"),
            ["version: Field required", "alerts: Field required"],
            id="grafana-legacy-alerting",
        ),
        pytest.param(
            [payload("alertmanager_firing.json")],
            ["body: must be a JSON object (got a list)"],
            id="list-body",
        ),
        pytest.param(None, ["body: must be a JSON object (got null)"], id="null-body"),
        pytest.param(
            {"version": 4, "alerts": []},
            ["version: Input should be a valid string (got 4)"],
            id="numeric-version",
        ),
        pytest.param(
            {"version": "4", "alerts": {"0": {}}},
            ['alerts: Input should be a valid list (got {"0": {}})'],
            id="alerts-not-a-list",
        ),
        pytest.param(
            {"version": "4", "alerts": [], "truncatedAlerts": "3"},
            ['truncatedAlerts: Input should be a valid integer (got "3")'],
            id="string-truncated-not-coerced",
        ),
        pytest.param(
            {"version": "4", "alerts": [], "truncatedAlerts": True},
            ["truncatedAlerts: Input should be a valid integer (got true)"],
            id="boolean-truncated",
        ),
        pytest.param(
            {"version": "4", "alerts": [], "truncatedAlerts": -1},
            ["truncatedAlerts: Input should be greater than or equal to 0"],
            id="negative-truncated",
        ),
        pytest.param(
            {"version": "4", "alerts": [], "groupLabels": {"service": 1}},
            ["groupLabels.service: Input should be a valid string (got 1)"],
            id="bad-group-labels",
        ),
        pytest.param(
            {"version": "4", "alerts": [], "status": "pending"},
            ["status: must be one of firing, resolved (got 'pending')"],
            id="bad-group-status",
        ),
    ],
)
def test_alertmanager_unusable_bodies(body: Any, errors: list[str]) -> None:
    assert ingest_errors(am, body) == (422, errors)


def test_ingest_error_is_a_fireline_error_with_the_reason() -> None:
    with pytest.raises(FirelineError) as caught:
        am({"version": "3"})
    assert caught.value.status == 422
    assert caught.value.reason == (
        'version: must be "4" (Alertmanager) or "1" (Grafana) (got \'3\'); alerts: Field required'
    )


def test_batch_is_the_recorded_alert_batch() -> None:
    result = am(payload("alertmanager_firing.json"))
    batch = result.batch()
    assert batch == AlertBatch(
        alerts=result.accepted,
        received_at=RECEIVED,
        source=AlertSource.ALERTMANAGER,
        integration="am-prod",
        group_key='{}/{severity="critical"}:{alertname="HighErrorRate", service="checkout"}',
    )
    assert AlertBatch.model_validate(batch.model_dump(mode="json")) == batch


def test_received_at_must_have_an_offset() -> None:
    with pytest.raises(ValueError, match=r"^received_at must have a UTC offset$"):
        normalise_alertmanager(
            payload("alertmanager_firing.json"),
            integration=None,
            received_at=datetime(2024, 5, 1, 10, 0),
        )


# --- PagerDuty Events API v2 ----------------------------------------------------------------


def test_pagerduty_trigger_maps_every_field() -> None:
    result = pd(payload("pagerduty_trigger.json"))
    assert result.dedup_key == "checkout-latency-eu-1"
    assert result.acks == []
    assert result.accepted == [
        Alert(
            fingerprint=pagerduty_fingerprint("checkout-latency-eu-1", "pd-checkout"),
            status=AlertStatus.FIRING,
            labels={
                "alertname": "HighLatency",
                "severity": "critical",
                "source": "checkout-1.example.com",
                "component": "api",
                "group": "checkout-eu",
                "service": "checkout",
                "dedup_key": "checkout-latency-eu-1",
            },
            annotations={
                "summary": "p99 latency of checkout in eu-1 is 2.4s",
                "custom_details": (
                    '{"owner":"alice@example.com","p99 seconds":2.4,"region":"eu-1"}'
                ),
                "client": "Example Monitoring",
                "link_0": "https://grafana.example.com/d/checkout",
                "link_0_text": "Checkout dashboard",
                "link_1": "https://runbooks.example.com/checkout/latency",
                "image_0": "https://grafana.example.com/render/checkout-latency.png",
                "image_0_href": "https://grafana.example.com/d/checkout",
                "image_0_alt": "p99 latency, last hour",
            },
            # PagerDuty's documented "+0000" offset form.
            starts_at=datetime(2024, 5, 1, 9, 58, 12, 315000, tzinfo=UTC),
            ends_at=None,
            generator_url="https://monitoring.example.com/checks/checkout-latency",
            source=AlertSource.PAGERDUTY_EVENTS,
            integration="pd-checkout",
        )
    ]
    assert result.pagerduty_response() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "checkout-latency-eu-1",
    }


def test_pagerduty_never_records_the_routing_key() -> None:
    result = pd(payload("pagerduty_trigger.json"))
    assert ROUTING_KEY not in result.model_dump_json()


def test_pagerduty_trigger_without_dedup_key_derives_a_stable_one() -> None:
    result = pd(payload("pagerduty_trigger_minimal.json"))
    assert result.dedup_key == "660c914e4e40a9a46ad01a039de655d7"
    # A retry of the same event lands on the same alert.
    assert pd(payload("pagerduty_trigger_minimal.json")).accepted == result.accepted
    (alert,) = result.accepted
    assert alert.labels == {
        "alertname": "Replication lag on ledger-db-2 is 45s",
        "severity": "warning",
        "source": "ledger-db-2.example.com",
        "service": "checkout",
        "dedup_key": "660c914e4e40a9a46ad01a039de655d7",
    }
    assert (alert.starts_at, alert.generator_url) == (RECEIVED, None)
    assert alert.annotations == {"summary": "Replication lag on ledger-db-2 is 45s"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        pytest.param(("routing_key",), "fedcba9876543210fedcba9876543210", id="routing-key"),
        pytest.param(("payload", "summary"), "Replication lag is 50s", id="summary"),
        pytest.param(("payload", "source"), "ledger-db-3.example.com", id="source"),
        pytest.param(("payload", "component"), "postgres", id="component"),
    ],
)
def test_derived_dedup_key_changes_with_its_inputs(path: tuple[str, ...], value: str) -> None:
    body = payload("pagerduty_trigger_minimal.json")
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert derive_dedup_key(parse_pagerduty_event(body)) != "660c914e4e40a9a46ad01a039de655d7"


def test_derived_dedup_key_ignores_severity() -> None:
    body = payload("pagerduty_trigger_minimal.json")
    body["payload"]["severity"] = "critical"
    assert derive_dedup_key(parse_pagerduty_event(body)) == "660c914e4e40a9a46ad01a039de655d7"


def test_pagerduty_acknowledge_is_an_ack_not_an_alert() -> None:
    result = pd(payload("pagerduty_acknowledge.json"))
    assert result.accepted == []
    assert result.acks == [
        AckRequest(
            fingerprint=pagerduty_fingerprint("checkout-latency-eu-1", "pd-checkout"),
            dedup_key="checkout-latency-eu-1",
            integration="pd-checkout",
            received_at=RECEIVED,
        )
    ]
    assert result.pagerduty_response()["dedup_key"] == "checkout-latency-eu-1"


def test_pagerduty_resolve_without_payload() -> None:
    trigger = pd(payload("pagerduty_trigger.json")).accepted[0]
    result = pd(payload("pagerduty_resolve.json"))
    assert result.accepted == [
        Alert(
            fingerprint=trigger.fingerprint,
            status=AlertStatus.RESOLVED,
            labels={
                "alertname": PAGERDUTY_RESOLVE_ALERTNAME,
                "service": "checkout",
                "dedup_key": "checkout-latency-eu-1",
            },
            starts_at=RECEIVED,
            ends_at=RECEIVED,
            source=AlertSource.PAGERDUTY_EVENTS,
            integration="pd-checkout",
        )
    ]


def test_pagerduty_resolve_with_payload_keeps_the_trigger_labels() -> None:
    (alert,) = pd(payload("pagerduty_resolve_with_payload.json"), service=None).accepted
    assert alert.status is AlertStatus.RESOLVED
    assert alert.labels == {
        "alertname": "HighErrorRate",
        "severity": "critical",
        "source": "alertmanager.example.com",
        "dedup_key": "5d41402abc4b2a76b9719d911017c592",
    }
    assert (alert.ends_at, alert.annotations["client"], alert.generator_url) == (
        RECEIVED,
        "Alertmanager",
        "http://alertmanager.example.com:9093/#/alerts?receiver=pagerduty",
    )


def test_pagerduty_fingerprint_is_scoped_to_the_integration() -> None:
    here = pd(payload("pagerduty_trigger.json"), integration="pd-checkout").accepted[0]
    there = pd(payload("pagerduty_trigger.json"), integration="pd-ledger").accepted[0]
    assert here.fingerprint != there.fingerprint
    assert pagerduty_fingerprint("checkout-latency-eu-1", "pd-checkout") == "0b63768059ac15f4"


def test_pagerduty_empty_optional_fields_are_no_labels() -> None:
    body = payload("pagerduty_trigger.json")
    body["payload"].update({"component": "", "group": None, "class": ""})
    body["links"] = []
    body["images"] = []
    body["client"] = ""
    (alert,) = pd(body).accepted
    assert alert.labels["alertname"] == "p99 latency of checkout in eu-1 is 2.4s"
    assert "component" not in alert.labels
    assert "group" not in alert.labels
    assert sorted(alert.annotations) == ["custom_details", "summary"]


def test_pagerduty_large_custom_details_are_cut_visibly() -> None:
    body = payload("pagerduty_trigger.json")
    body["payload"]["custom_details"] = {"log": "x" * 20_000}
    details = pd(body).accepted[0].annotations["custom_details"]
    assert len(details) == CUSTOM_DETAILS_LIMIT
    assert details.startswith('{"log":"xxx')
    assert details.endswith("xxx… (truncated)")


def test_pagerduty_accepts_a_parsed_event() -> None:
    event = parse_pagerduty_event(payload("pagerduty_trigger.json"))
    assert isinstance(event, PagerDutyEvent)
    assert event.routing_key == ROUTING_KEY
    assert pd(event) == pd(payload("pagerduty_trigger.json"))


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param(
            payload("pagerduty_unknown_action.json"),
            ["event_action: must be one of trigger, acknowledge, resolve (got 'explode')"],
            id="unknown-action",
        ),
        pytest.param(
            payload("pagerduty_missing_routing_key.json"),
            ["routing_key: Field required"],
            id="missing-routing-key",
        ),
        pytest.param(
            payload("pagerduty_bad_payload.json"),
            [
                "routing_key: must be 32 characters (got 9)",
                "payload.summary: must not be empty",
                "payload.source: Field required",
                "payload.severity: must be one of critical, error, warning, info (got 'high')",
                "payload.timestamp: 'yesterday' is not a time with an offset "
                "(e.g. 2015-07-17T08:42:58.315+0000)",
                'payload.custom_details: Input should be a valid dictionary (got "not an object")',
                "links[0].href: Field required",
            ],
            id="bad-payload",
        ),
        pytest.param(
            {"routing_key": ROUTING_KEY, "event_action": "trigger"},
            ["payload: Field required for a trigger event"],
            id="trigger-without-payload",
        ),
        pytest.param(
            {"routing_key": ROUTING_KEY, "event_action": "acknowledge"},
            ["dedup_key: Field required for an acknowledge event"],
            id="ack-without-dedup-key",
        ),
        pytest.param(
            {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": ""},
            ["dedup_key: must not be empty"],
            id="empty-dedup-key",
        ),
        pytest.param(
            {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "k" * 256},
            ["dedup_key: must be at most 255 characters (got 256)"],
            id="long-dedup-key",
        ),
        pytest.param(
            {
                "routing_key": ROUTING_KEY,
                "event_action": "trigger",
                "payload": {"summary": "s" * 1025, "source": "h", "severity": "info"},
            },
            ["payload.summary: must be at most 1024 characters (got 1025)"],
            id="long-summary",
        ),
        pytest.param(
            {"routing_key": "0123456789abcdef 123456789abcdef", "event_action": "resolve"},
            ["routing_key: must be printable ASCII characters without spaces"],
            id="routing-key-with-space",
        ),
        pytest.param(
            {"routing_key": 12, "event_action": "resolve", "dedup_key": "k"},
            ["routing_key: Input should be a valid string (got 12)"],
            id="numeric-routing-key",
        ),
        pytest.param(
            {
                "service_key": ROUTING_KEY,
                "event_type": "trigger",
                "description": "Events API v1 body",
            },
            ["routing_key: Field required", "event_action: Field required"],
            id="events-api-v1-body",
        ),
        pytest.param("trigger", ["body: must be a JSON object (got a string)"], id="string"),
    ],
)
def test_pagerduty_invalid_events(body: Any, errors: list[str]) -> None:
    assert ingest_errors(pd, body) == (400, errors)


def test_pagerduty_error_body_is_pagerdutys() -> None:
    with pytest.raises(IngestError) as caught:
        pd(payload("pagerduty_unknown_action.json"))
    assert caught.value.pagerduty_body() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["event_action: must be one of trigger, acknowledge, resolve (got 'explode')"],
    }


def test_pagerduty_response_helpers() -> None:
    assert pagerduty_accepted("k1") == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "k1",
    }
    assert pagerduty_invalid(("a: b",)) == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["a: b"],
    }
    with pytest.raises(ValueError, match=r"^not a PagerDuty result: no dedup_key$"):
        am(payload("alertmanager_firing.json")).pagerduty_response()


# --- fireline JSON --------------------------------------------------------------------------


def test_fireline_single_alert() -> None:
    result = fl(payload("fireline_single.json"))
    assert result.rejected == []
    assert result.accepted == [
        Alert(
            fingerprint="cert-www.example.com",
            status=AlertStatus.FIRING,
            labels={
                "alertname": "CertificateExpiring",
                "service": "edge",
                "severity": "warning",
                "host": "www.example.com",
            },
            annotations={"summary": "TLS certificate for www.example.com expires in 6 days"},
            starts_at=datetime(2024, 5, 1, 6, 0, tzinfo=UTC),
            generator_url="https://certs.example.com/www.example.com",
            source=AlertSource.FIRELINE,
            integration="cli",
        )
    ]


def test_fireline_list_rejects_unknown_keys_by_index() -> None:
    result = fl(payload("fireline_list.json"))
    assert result.rejected == [RejectedAlert(index=1, reason="[1].severity: unknown field")]
    first, resolved = result.accepted
    assert (first.status, first.starts_at, first.ends_at) == (AlertStatus.FIRING, RECEIVED, None)
    assert first.fingerprint == fingerprint(first.labels)
    assert (resolved.status, resolved.starts_at, resolved.ends_at) == (
        AlertStatus.RESOLVED,
        datetime(2024, 4, 30, 22, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 7, 15, tzinfo=UTC),
    )


def test_fireline_resolved_without_end_ended_when_received() -> None:
    (alert,) = fl({"labels": {"alertname": "X"}, "status": "resolved"}).accepted
    assert (alert.starts_at, alert.ends_at) == (RECEIVED, RECEIVED)


def test_fireline_zero_end_time_means_none() -> None:
    (alert,) = fl({"labels": {"alertname": "X"}, "ends_at": "0001-01-01T00:00:00Z"}).accepted
    assert alert.ends_at is None


def test_fireline_empty_list_accepts_nothing() -> None:
    assert (fl([]).accepted, fl([]).rejected) == ([], [])


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param(
            {"labels": {"alertname": "X"}, "severity": "critical"},
            ["severity: unknown field"],
            id="unknown-key",
        ),
        pytest.param({"annotations": {}}, ["labels: Field required"], id="no-labels"),
        pytest.param(
            {"labels": {"alertname": "X", "replicas": 3}},
            ["labels.replicas: Input should be a valid string (got 3)"],
            id="number-label",
        ),
        pytest.param(
            {"labels": {"alertname": "X"}, "ends_at": "2024-05-01T10:00:00Z"},
            [
                "ends_at: a firing alert has no end time (send 0001-01-01T00:00:00Z or leave "
                "it out; got 2024-05-01T10:00:00+00:00)"
            ],
            id="firing-with-end",
        ),
        pytest.param(
            {
                "labels": {"alertname": "X"},
                "status": "resolved",
                "starts_at": "2024-05-01T10:00:00Z",
                "ends_at": "2024-05-01T09:00:00Z",
            },
            ["ends_at: must not be before starts_at"],
            id="ends-before-starts",
        ),
        pytest.param(
            {"labels": {"alertname": "X"}, "starts_at": "0001-01-01T00:00:00Z"},
            ["starts_at: must be set (got the zero time)"],
            id="zero-start",
        ),
        pytest.param(
            {"labels": {"alertname": "X"}, "generator_url": ""},
            ["generator_url: must not be empty"],
            id="empty-generator-url",
        ),
        pytest.param(
            {"labels": {"alertname": "X"}, "fingerprint": "a b"},
            ["fingerprint: must be 1-128 printable ASCII characters without spaces"],
            id="bad-fingerprint",
        ),
        pytest.param(
            "CertificateExpiring",
            ["body: must be an alert object or a list of them (got a string)"],
            id="string-body",
        ),
    ],
)
def test_fireline_invalid_single_alert(body: Any, errors: list[str]) -> None:
    assert ingest_errors(fl, body) == (422, errors)


def test_fireline_list_item_not_an_object() -> None:
    assert fl([42]).rejected == [
        RejectedAlert(index=0, reason="[0]: must be an alert object (got a number)")
    ]


# --- times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01t10:00:00z", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01T10:00:00.5Z", datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T10:00:00.123456789Z", datetime(2024, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
        ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-05-01T04:30:00-05:30", datetime(2024, 5, 1, 10, 0, tzinfo=UTC)),
        ("2024-12-31T23:30:00-01:00", datetime(2025, 1, 1, 0, 30, tzinfo=UTC)),
        ("0001-01-01T00:00:00Z", ZERO_TIME),
    ],
)
def test_parse_time_accepts_rfc3339(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2024-05-01T10:00:00", "is not a time with an offset (e.g. 2024-05-01T12:00:00Z)"),
        ("2024-05-01 10:00:00Z", "is not a time with an offset (e.g. 2024-05-01T12:00:00Z)"),
        ("2024-05-01T10:00Z", "is not a time with an offset (e.g. 2024-05-01T12:00:00Z)"),
        ("2024-05-01T10:00:00+0000", "is not a time with an offset (e.g. 2024-05-01T12:00:00Z)"),
        ("2024-05-01T10:00:00.Z", "is not a time with an offset (e.g. 2024-05-01T12:00:00Z)"),
        ("1714557600", "is not a time with an offset (e.g. 2024-05-01T12:00:00Z)"),
        ("2024-02-30T10:00:00Z", "is not a valid time"),
        ("2024-05-01T24:00:00Z", "is not a valid time"),
        ("2024-05-01T10:00:00+24:00", "is not a valid time"),
        ("2024-05-01T10:00:00+01:60", "is not a valid time"),
        ("0001-01-01T00:00:00+01:00", "is not a valid time"),
    ],
)
def test_parse_time_rejects(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(f'{text!r} {message}')}$"):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-07-17T08:42:58.315+0000", datetime(2015, 7, 17, 8, 42, 58, 315000, tzinfo=UTC)),
        ("2015-07-17T10:42:58+0200", datetime(2015, 7, 17, 8, 42, 58, tzinfo=UTC)),
        ("2015-07-17T10:42:58+02:00", datetime(2015, 7, 17, 8, 42, 58, tzinfo=UTC)),
    ],
)
def test_parse_time_compact_offset_for_pagerduty(text: str, expected: datetime) -> None:
    assert parse_time(text, compact_offset=True) == expected


# --- JSON bodies ----------------------------------------------------------------------------


def test_load_json() -> None:
    assert load_json(b'{"version": "4"}') == {"version": "4"}


@pytest.mark.parametrize(
    ("raw", "status", "errors"),
    [
        (
            b"{",
            422,
            [
                "body: malformed JSON: Expecting property name enclosed in double "
                "quotes: line 1 column 2 (char 1)"
            ],
        ),
        (b'{"v": NaN}', 400, ["body: malformed JSON: NaN is not JSON"]),
        (b'{"v": "\xff"}', 422, ["body: not UTF-8 text"]),
    ],
)
def test_load_json_rejects(raw: bytes, status: int, errors: list[str]) -> None:
    assert ingest_errors(lambda r: load_json(r, status=status), raw) == (status, errors)


# --- authentication -------------------------------------------------------------------------

SECRET = b"s3cret-for-tests"
BODY = b'{"version":"4","alerts":[]}'
NOW = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
STAMP = str(int(NOW.timestamp()))


def sign(message: bytes, secret: bytes = SECRET) -> str:
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        pytest.param(sign(BODY), BODY, True, id="bare-hex-grafana"),
        pytest.param(f"sha256={sign(BODY)}", BODY, True, id="sha256-prefix"),
        pytest.param(f"SHA256={sign(BODY).upper()}", BODY, True, id="upper-case"),
        pytest.param(f" {sign(BODY)}\n", BODY, True, id="surrounding-space"),
        pytest.param(sign(BODY), BODY + b" ", False, id="tampered-body"),
        pytest.param(sign(BODY, b"other-secret"), BODY, False, id="wrong-secret"),
        pytest.param(None, BODY, False, id="missing"),
        pytest.param("", BODY, False, id="empty"),
        pytest.param("sha256=" + sign(BODY)[:-2], BODY, False, id="short"),
        pytest.param("sha1=" + sign(BODY), BODY, False, id="other-algorithm"),
        pytest.param("sha256=" + "z" * 64, BODY, False, id="not-hex"),
    ],
)
def test_verify_hmac_sha256(header: str | None, body: bytes, expected: bool) -> None:
    assert verify_hmac_sha256(SECRET, body, header) is expected


@pytest.mark.parametrize(
    ("header", "stamp", "now", "expected"),
    [
        pytest.param(sign(f"{STAMP}:".encode() + BODY), STAMP, NOW, True, id="fresh"),
        pytest.param(
            sign(f"{STAMP}:".encode() + BODY),
            STAMP,
            NOW + timedelta(minutes=5),
            True,
            id="at-tolerance",
        ),
        pytest.param(
            sign(f"{STAMP}:".encode() + BODY),
            STAMP,
            NOW + timedelta(minutes=5, seconds=1),
            False,
            id="stale",
        ),
        pytest.param(
            sign(f"{STAMP}:".encode() + BODY),
            STAMP,
            NOW - timedelta(minutes=6),
            False,
            id="from-the-future",
        ),
        pytest.param(sign(BODY), STAMP, NOW, False, id="timestamp-not-signed"),
        pytest.param(
            sign(f"{STAMP}:".encode() + BODY),
            str(int(STAMP) + 1),
            NOW,
            False,
            id="timestamp-swapped",
        ),
        pytest.param(sign(b"soon:" + BODY), "soon", NOW, False, id="not-a-number"),
    ],
)
def test_verify_hmac_sha256_with_timestamp(
    header: str, stamp: str, now: datetime, expected: bool
) -> None:
    assert verify_hmac_sha256(SECRET, BODY, header, timestamp_header=stamp, now=now) is expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"secret": b""}, "an empty HMAC secret would accept forged signatures"),
        ({"timestamp_header": STAMP}, "now is required to check a signature timestamp"),
        (
            {"timestamp_header": STAMP, "now": datetime(2024, 5, 1)},
            "now must have a UTC offset",
        ),
    ],
)
def test_verify_hmac_sha256_caller_bugs(kwargs: dict[str, Any], message: str) -> None:
    secret = kwargs.pop("secret", SECRET)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        verify_hmac_sha256(secret, BODY, sign(BODY), **kwargs)


TOKEN = "fl-token-alice-example"
TOKEN_SHA256 = hashlib.sha256(TOKEN.encode()).hexdigest()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param(f"Bearer {TOKEN}", True, id="good"),
        pytest.param(f"bearer  {TOKEN} ", True, id="scheme-case-and-space"),
        pytest.param(f"Bearer {TOKEN}x", False, id="wrong-token"),
        pytest.param(f"Basic {TOKEN}", False, id="other-scheme"),
        pytest.param(TOKEN, False, id="no-scheme"),
        pytest.param("Bearer ", False, id="empty-token"),
        pytest.param(None, False, id="missing"),
    ],
)
def test_bearer_matches(header: str | None, expected: bool) -> None:
    assert bearer_matches(TOKEN_SHA256, header) is expected
    assert bearer_matches(TOKEN_SHA256.upper(), header) is expected


def test_bearer_matches_refuses_a_bad_digest() -> None:
    with pytest.raises(ValueError, match=r"^expected_sha256_hex must be 64 hex digits$"):
        bearer_matches("abc", f"Bearer {TOKEN}")

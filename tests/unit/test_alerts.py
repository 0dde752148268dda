"""The normalised alert model, Alertmanager's fingerprint, and in-batch dedup, as tables."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from workflows.alerts import (
    AckRequest,
    Alert,
    AlertBatch,
    AlertSource,
    AlertStatus,
    dedup_batch,
    fingerprint,
)

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
LABELS = {"alertname": "HighErrorRate", "service": "checkout", "severity": "critical"}


def make_alert(**changes: Any) -> Alert:
    fields: dict[str, Any] = {
        "fingerprint": "a93b19564dc7891a",
        "status": AlertStatus.FIRING,
        "labels": LABELS,
        "starts_at": T0,
        "source": AlertSource.ALERTMANAGER,
    }
    fields.update(changes)
    return Alert(**fields)


# --- fingerprint --------------------------------------------------------------------------

# Published vectors from prometheus/common model/signature_test.go: Alertmanager's algorithm.
PROMETHEUS_VECTORS = [
    pytest.param({}, 14695981039346656037, id="empty-is-fnv-offset-basis"),
    pytest.param(
        {"name": "garland, briggs", "fear": "love is not enough"},
        5799056148416392346,
        id="two-labels",
    ),
    pytest.param({"first-label": "first-label-value"}, 5146282821936882169, id="single"),
    pytest.param(
        {
            "first-label": "first-label-value",
            "second-label": "second-label-value",
            "third-label": "third-label-value",
        },
        13843036195897128121,
        id="triple",
    ),
]


@pytest.mark.parametrize(("labels", "expected"), PROMETHEUS_VECTORS)
def test_fingerprint_matches_prometheus_vectors(labels: dict[str, str], expected: int) -> None:
    assert fingerprint(labels) == f"{expected:016x}"


def test_fingerprint_is_16_lowercase_hex_digits() -> None:
    # Pinned: a change here changes every stored alert identity, a versioning event.
    assert fingerprint(LABELS) == "7d2d332feada5c59"


def test_fingerprint_ignores_label_order() -> None:
    forward = dict(LABELS)
    backward = dict(reversed(list(LABELS.items())))
    assert list(forward) != list(backward)
    assert fingerprint(forward) == fingerprint(backward)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({**LABELS, "severity": "warning"}, id="value-changed"),
        pytest.param({**LABELS, "zone": "eu-1"}, id="label-added"),
        pytest.param({"alertname": "HighErrorRate", "service": "checkout"}, id="label-removed"),
        pytest.param({**LABELS, "extra": ""}, id="empty-label-added"),
        pytest.param(
            {"alertname": "HighErrorRate", "Service": "checkout", "severity": "critical"},
            id="name-case-changed",
        ),
        pytest.param({**LABELS, "service": "checkout "}, id="trailing-space"),
    ],
)
def test_fingerprint_changes_with_any_label_change(changed: dict[str, str]) -> None:
    assert fingerprint(changed) != fingerprint(LABELS)


def test_fingerprint_separates_names_from_values() -> None:
    # Without the 0xFF separators these two label sets would hash the same bytes.
    assert fingerprint({"ab": "c"}) != fingerprint({"a": "bc"})


def test_fingerprint_hashes_utf8() -> None:
    assert fingerprint({"alertname": "Überlast"}) != fingerprint({"alertname": "Uberlast"})
    assert fingerprint({"alertname": "Überlast"}) == fingerprint({"alertname": "Überlast"})


# --- Alert --------------------------------------------------------------------------------


def test_alert_round_trips_through_json() -> None:
    alert = make_alert(
        status=AlertStatus.RESOLVED,
        annotations={"summary": "checkout is failing"},
        ends_at=T0 + timedelta(minutes=5),
        generator_url="http://prometheus.example.com:9090/graph",
        integration="am-prod",
    )
    dumped = alert.model_dump(mode="json")
    assert dumped == {
        "fingerprint": "a93b19564dc7891a",
        "status": "resolved",
        "labels": LABELS,
        "annotations": {"summary": "checkout is failing"},
        "starts_at": "2024-05-01T10:00:00Z",
        "ends_at": "2024-05-01T10:05:00Z",
        "generator_url": "http://prometheus.example.com:9090/graph",
        "source": "alertmanager",
        "integration": "am-prod",
    }
    assert Alert.model_validate(dumped) == alert


def test_alert_stores_times_in_utc() -> None:
    paris = timezone(timedelta(hours=2))
    alert = make_alert(starts_at=datetime(2024, 5, 1, 12, 0, tzinfo=paris))
    assert alert.starts_at == T0
    assert alert.starts_at.tzinfo is UTC


def test_alert_is_frozen() -> None:
    alert = make_alert()
    with pytest.raises(ValidationError, match="Instance is frozen"):
        alert.status = AlertStatus.RESOLVED  # type: ignore[misc]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"labels": {"service": "checkout"}},
            "Value error, labels must include a non-empty alertname",
            id="no-alertname",
        ),
        pytest.param(
            {"labels": {"alertname": ""}},
            "Value error, labels must include a non-empty alertname",
            id="empty-alertname",
        ),
        pytest.param(
            {"labels": {"alertname": "X", "": "y"}},
            "Value error, label names must not be empty",
            id="empty-label-name",
        ),
        pytest.param(
            {"ends_at": T0},
            "Value error, a firing alert has no ends_at",
            id="firing-with-end",
        ),
        pytest.param(
            {"status": AlertStatus.RESOLVED},
            "Value error, a resolved alert needs ends_at",
            id="resolved-without-end",
        ),
        pytest.param(
            {"starts_at": datetime(2024, 5, 1, 10, 0)},
            "Value error, must have a UTC offset",
            id="naive-time",
        ),
        pytest.param(
            {"fingerprint": "has space"},
            "String should match pattern '^[!-~]{1,128}$'",
            id="fingerprint-with-space",
        ),
        pytest.param(
            {"fingerprint": ""},
            "String should match pattern '^[!-~]{1,128}$'",
            id="empty-fingerprint",
        ),
        pytest.param(
            {"fingerprint": "f" * 129},
            "String should match pattern '^[!-~]{1,128}$'",
            id="long-fingerprint",
        ),
        pytest.param({"colour": "red"}, "Extra inputs are not permitted", id="unknown-field"),
    ],
)
def test_alert_invariants(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        make_alert(**changes)
    assert [error["msg"] for error in caught.value.errors()] == [message]


@pytest.mark.parametrize(
    ("annotations", "expected"),
    [
        pytest.param({"summary": "Checkout failing", "description": "long"}, "Checkout failing"),
        pytest.param({"description": "Disk 93% full"}, "Disk 93% full", id="description"),
        pytest.param({"message": "Grafana says hi"}, "Grafana says hi", id="message"),
        pytest.param({"summary": "  ", "description": "d"}, "d", id="blank-summary-skipped"),
        pytest.param({"runbook_url": "https://runbooks.example.com"}, "HighErrorRate", id="none"),
    ],
)
def test_summary_prefers_annotations_then_alertname(
    annotations: dict[str, str], expected: str
) -> None:
    assert make_alert(annotations=annotations).summary() == expected


def test_ack_request_and_batch_round_trip() -> None:
    ack = AckRequest(fingerprint="0b63768059ac15f4", dedup_key="k", received_at=T0)
    assert ack.source is AlertSource.PAGERDUTY_EVENTS
    assert AckRequest.model_validate(ack.model_dump(mode="json")) == ack
    batch = AlertBatch(
        alerts=[make_alert()],
        received_at=T0,
        source=AlertSource.ALERTMANAGER,
        integration="am-prod",
        group_key='{}:{alertname="HighErrorRate"}',
    )
    assert AlertBatch.model_validate(batch.model_dump(mode="json")) == batch


# --- dedup_batch --------------------------------------------------------------------------

FIRING_10 = make_alert(fingerprint="a", starts_at=T0)
FIRING_11 = make_alert(fingerprint="a", starts_at=T0 + timedelta(minutes=1))
RESOLVED_10 = make_alert(
    fingerprint="a", status=AlertStatus.RESOLVED, starts_at=T0 - timedelta(hours=1), ends_at=T0
)
RESOLVED_9 = make_alert(
    fingerprint="a",
    status=AlertStatus.RESOLVED,
    starts_at=T0 - timedelta(hours=2),
    ends_at=T0 - timedelta(hours=1),
)
OTHER = make_alert(fingerprint="b")
SAME_TIME_FIRST = make_alert(fingerprint="a", annotations={"summary": "first"})
SAME_TIME_SECOND = make_alert(fingerprint="a", annotations={"summary": "second"})


@pytest.mark.parametrize(
    ("batch", "expected"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([FIRING_10, OTHER], [FIRING_10, OTHER], id="distinct-kept-in-order"),
        pytest.param([FIRING_11, FIRING_10], [FIRING_11], id="later-start-wins"),
        pytest.param([FIRING_10, RESOLVED_10], [RESOLVED_10], id="resolved-beats-firing-at-tie"),
        pytest.param([RESOLVED_10, FIRING_10], [RESOLVED_10], id="tie-regardless-of-order"),
        pytest.param([RESOLVED_9, FIRING_10], [FIRING_10], id="refired-after-resolve"),
        pytest.param([FIRING_10, RESOLVED_9], [FIRING_10], id="stale-resolve-loses"),
        pytest.param(
            [SAME_TIME_FIRST, SAME_TIME_SECOND], [SAME_TIME_SECOND], id="exact-tie-last-wins"
        ),
        pytest.param(
            [FIRING_10, OTHER, RESOLVED_10],
            [RESOLVED_10, OTHER],
            id="first-appearance-order",
        ),
    ],
)
def test_dedup_batch_keeps_latest_state(batch: list[Alert], expected: list[Alert]) -> None:
    assert dedup_batch(batch) == expected

"""The e2e harness against a stand-in webhook: real Prometheus and Alertmanager, real POSTs.

What fireline's own e2e tests rely on is checked here once: a Prometheus rule reaches the
webhook as a version-4 payload and resolves, pushed alerts arrive with the configured bearer
token and truncation, and a webhook answering 500 gets the same notification again.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import (
    INSTALL_HINT,
    ZERO_TIME,
    E2EStacks,
    MissingBinary,
    alert_rule,
    alertmanager,
    find_binary,
    pushed_alert,
    require_binaries,
)
from tests.e2e.harness import e2e_stacks as e2e_stacks  # the fixture, registered by import

pytestmark = pytest.mark.e2e

WEBHOOK_PATH = "/v1/alerts/alertmanager"


@dataclass
class Delivery:
    """One POST the receiver got, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    status: int


class Receiver:
    """A loopback webhook recording every POST; answers queued statuses, then 200."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver._deliveries.append(
                        Delivery(self.path, dict(self.headers.items()), body, status)
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> None:
        """Serve in a thread, so Alertmanager is answered whatever the test is doing."""
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        """The webhook URL, on fireline's Alertmanager path."""
        return f"http://127.0.0.1:{self._server.server_address[1]}{WEBHOOK_PATH}"

    def deliveries(self) -> list[Delivery]:
        """A snapshot of every POST so far."""
        with self._lock:
            return list(self._deliveries)

    def first(self, status: str, *, after: int = 0) -> Delivery:
        """The first delivery with payload ``status`` at index >= ``after``, else AssertionError."""
        got = self.deliveries()
        for delivery in got[after:]:
            if delivery.body.get("status") == status:
                return delivery
        raise AssertionError(f"no {status} delivery yet; got {[d.body for d in got]}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running stand-in webhook."""
    rec = Receiver()
    rec.start()
    yield rec
    rec.stop()


def parse_time(value: str) -> datetime:
    """An RFC 3339 time from a payload (Go prints up to nanoseconds)."""
    trimmed = re.sub(r"(\.\d{6})\d+", r"\1", value).replace("Z", "+00:00")
    return datetime.fromisoformat(trimmed)


def test_prometheus_rule_fires_and_resolves_through_alertmanager(
    e2e_stacks: E2EStacks, receiver: Receiver
) -> None:
    rule = alert_rule(
        "CheckoutErrorRatioHigh",
        "checkout_error_ratio > 0.1",
        for_="1s",
        labels={"severity": "critical", "team": "payments"},
        annotations={"summary": "error ratio {{ $value }} on {{ $labels.service }}"},
    )
    stack = e2e_stacks.stack(receiver.url, [rule])
    series = {"service": "checkout"}
    stack.metrics.set("checkout_error_ratio", 0.05, labels=series)
    stack.wait_until(
        lambda: _assert_equal(stack.prometheus.query_value("checkout_error_ratio"), 0.05),
        what="Prometheus to scrape the gauge",
    )
    assert receiver.deliveries() == []

    stack.metrics.set("checkout_error_ratio", 0.3, labels=series)
    firing = stack.wait_until(lambda: receiver.first("firing"), what="a firing notification")

    body = firing.body
    assert firing.path == WEBHOOK_PATH
    assert "authorization" not in {k.lower() for k in firing.headers}
    assert body["version"] == "4"
    assert body["receiver"] == "fireline"
    assert body["groupKey"] == '{}:{alertname="CheckoutErrorRatioHigh"}'
    assert body["truncatedAlerts"] == 0
    assert body["groupLabels"] == {"alertname": "CheckoutErrorRatioHigh"}
    assert body["externalURL"] == stack.alertmanager.url
    expected_labels = {
        "alertname": "CheckoutErrorRatioHigh",
        "severity": "critical",
        "team": "payments",
        "service": "checkout",
        "job": "metrics",
        "instance": stack.metrics.target,
    }
    assert body["commonLabels"] == expected_labels
    assert body["commonAnnotations"] == {"summary": "error ratio 0.3 on checkout"}
    [alert] = body["alerts"]
    assert alert["status"] == "firing"
    assert alert["labels"] == expected_labels
    assert alert["annotations"] == {"summary": "error ratio 0.3 on checkout"}
    assert alert["endsAt"] == ZERO_TIME
    assert alert["generatorURL"].startswith(f"{stack.prometheus.url}/graph?")
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"])
    parse_time(alert["startsAt"])
    # Prometheus's own view agrees: the synthetic ALERTS series says firing.
    [sample] = stack.prometheus.query('ALERTS{alertname="CheckoutErrorRatioHigh"}')
    assert sample["metric"]["alertstate"] == "firing"

    seen = len(receiver.deliveries())
    stack.metrics.set("checkout_error_ratio", 0.01, labels=series)
    resolved = stack.wait_until(
        lambda: receiver.first("resolved", after=seen), what="a resolved notification"
    )
    assert resolved.body["groupKey"] == body["groupKey"]
    [gone] = resolved.body["alerts"]
    assert gone["status"] == "resolved"
    assert gone["fingerprint"] == alert["fingerprint"]
    assert gone["startsAt"] == alert["startsAt"]
    assert gone["endsAt"] != ZERO_TIME
    assert parse_time(gone["endsAt"]) > parse_time(gone["startsAt"])


def test_pushed_alerts_reach_the_webhook_with_token_and_truncation(
    receiver: Receiver, tmp_path: Path
) -> None:
    require_binaries()
    alerts = [
        pushed_alert(
            {"alertname": "DiskFull", "service": "search", "instance": name},
            {"summary": f"disk full on {name}"},
        )
        for name in ("a", "b")
    ]
    with alertmanager(
        receiver.url, workdir=tmp_path, bearer_token="s3cret-token", max_alerts=1
    ) as am:
        pid = am.pid
        am.push_alerts(alerts)
        held = am.alerts('alertname="DiskFull"')
        assert sorted(a["labels"]["instance"] for a in held) == ["a", "b"]
        assert {a["status"]["state"] for a in held} == {"active"}

        # The group may first flush with one alert (group_wait 0s), then with both.
        def truncated() -> Delivery:
            for delivery in receiver.deliveries():
                if delivery.body["truncatedAlerts"] == 1:
                    return delivery
            raise AssertionError(f"no truncated delivery in {receiver.deliveries()}")

        firing = am.wait_until(truncated, what="a notification truncated to one alert")
        assert firing.body["status"] == "firing"
        assert len(firing.body["alerts"]) == 1
        assert firing.body["alerts"][0]["annotations"]["summary"].startswith("disk full on ")

        seen = len(receiver.deliveries())
        am.push_alerts([pushed_alert(a["labels"], a["annotations"], resolved=True) for a in alerts])
        resolved = am.wait_until(
            lambda: receiver.first("resolved", after=seen), what="a resolved notification"
        )
        assert resolved.body["truncatedAlerts"] == 1
        assert resolved.body["alerts"][0]["status"] == "resolved"
        for delivery in receiver.deliveries():
            assert delivery.headers.get("Authorization") == "Bearer s3cret-token"

        # A wait that cannot succeed explains itself with Alertmanager's state and log.
        with pytest.raises(AssertionError, match=r"(?s)an impossible event.*last lines of"):
            am.wait_until(lambda: _assert_equal(1, 2), what="an impossible event", timeout=0.3)
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_webhook_answering_500_is_retried_with_the_same_notification(
    e2e_stacks: E2EStacks, receiver: Receiver, record_property: Any
) -> None:
    # Async, as fireline's own e2e tests will be: the wait yields to the event loop.
    receiver.statuses = [500, 500]
    am = e2e_stacks.alertmanager(receiver.url)
    am.push_alerts([pushed_alert({"alertname": "Retried", "service": "checkout"})])

    async def accepted() -> list[Delivery]:
        got = receiver.deliveries()
        assert any(d.status == 200 for d in got), f"not accepted yet: {[d.status for d in got]}"
        return got

    got = await am.wait_until_async(accepted, what="a delivery answered 200 after two 500s")
    record_property("webhook_attempts", len(got))
    assert [d.status for d in got[:3]] == [500, 500, 200]
    # Every attempt carries the same group and alert: a receiver can dedupe on them.
    assert {d.body["groupKey"] for d in got} == {'{}:{alertname="Retried"}'}
    assert {json.dumps(d.body["alerts"], sort_keys=True) for d in got} == {
        json.dumps(got[0].body["alerts"], sort_keys=True)
    }


def test_missing_binaries_fail_with_the_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingBinary, match=re.escape(INSTALL_HINT)):
        find_binary("fireline-no-such-server", "FIRELINE_NO_SUCH_SERVER_BIN")
    monkeypatch.setenv("FIRELINE_PROMETHEUS_BIN", "/nonexistent/prometheus")
    # A failure, never a skip: CI installs the packages, so a missing one is a broken step.
    with pytest.raises(pytest.fail.Exception, match="install-system-packages"):
        require_binaries()


def _assert_equal(actual: object, expected: object) -> None:
    assert actual == expected, f"{actual!r} != {expected!r}"

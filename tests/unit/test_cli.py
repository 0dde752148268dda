"""The CLI's output and exit codes, with the API replaced by httpx.MockTransport."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from datetime import UTC, datetime

import httpx
import pytest

from worker.cli import (
    EXIT_REFUSED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    ApiClient,
    CliError,
    age,
    render_incident,
    render_list,
    table,
)


def client_answering(status: int, body: object) -> ApiClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Fireline-User"] == "alice"
        assert request.headers["Authorization"] == "Bearer t0k"
        return httpx.Response(status, json=body)

    return ApiClient("http://fireline", "t0k", "alice", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, EXIT_REFUSED),
        (403, EXIT_REFUSED),
        (404, EXIT_REFUSED),
        (409, EXIT_REFUSED),
        (422, EXIT_USAGE),
        (500, EXIT_UNAVAILABLE),
        (503, EXIT_UNAVAILABLE),
    ],
)
def test_http_errors_map_to_exit_codes(status: int, code: int) -> None:
    api = client_answering(status, {"error": "x", "reason": "INC-3 is closed"})
    with pytest.raises(CliError) as caught:
        api.request("POST", "/v1/incidents/INC-3/resolve", json={})
    assert caught.value.code == code
    assert str(caught.value) == f"INC-3 is closed (HTTP {status})"


def test_success_returns_the_body() -> None:
    assert client_answering(200, {"ok": 1}).request("GET", "/v1/incidents") == {"ok": 1}


def test_table_aligns_columns() -> None:
    assert table(["id", "title"], [["INC-1", "a"], ["INC-10", "longer"]]) == (
        "ID      TITLE\nINC-1   a\nINC-10  longer"
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (5, "5s"),
        (59, "59s"),
        (60, "1m"),
        (3600, "1h"),
        (3900, "1h5m"),
        (86400, "1d"),
        (90000, "1d1h"),
        (-3, "0s"),
    ],
)
def test_age(seconds: int, text: str) -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    then = datetime.fromtimestamp(now.timestamp() - seconds, UTC).isoformat()
    assert age(then, now) == text


def test_render_list_empty_and_rows() -> None:
    assert render_list([]) == "no incidents match"
    out = render_list(
        [
            {
                "id": "INC-2",
                "severity": "SEV1",
                "status": "declared",
                "service": "checkout",
                "commander": None,
                "declared_at": None,
                "title": "Payments failing",
            }
        ]
    )
    assert out.splitlines()[1].split() == [
        "INC-2",
        "SEV1",
        "declared",
        "checkout",
        "-",
        "-",
        "Payments",
        "failing",
    ]


def test_render_incident_shows_roles_and_timeline() -> None:
    at = "2026-11-27T12:00:00+00:00"
    text = render_incident(
        {
            "id": "INC-2",
            "severity": "SEV1",
            "status": "acknowledged",
            "title": "Payments failing",
            "service": "checkout",
            "severity_reason": "set by the declarer",
            "declared_at": at,
            "declared_by": "alice",
            "acknowledged_at": at,
            "roles": {"commander": "bob"},
            "timeline": [{"at": at, "actor": "bob", "text": "bob acknowledged"}],
        }
    )
    assert text.splitlines()[0] == "INC-2  SEV1  ACKNOWLEDGED  Payments failing"
    assert "  roles        commander: bob" in text
    assert "bob acknowledged" in text.splitlines()[-1]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args], capture_output=True, text=True, timeout=60
    )


def test_help_lists_commands_and_exit_codes() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for word in ("up", "worker", "api", "incident", "replay", "exit codes:"):
        assert word in done.stdout


def test_bad_label_is_a_usage_error() -> None:
    done = run_cli(
        "incident",
        "declare",
        "x",
        "--service",
        "s",
        "--label",
        "novalue",
        "--url",
        "http://127.0.0.1:9",
    )
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip() == "fireline: --label 'novalue': expected KEY=VALUE"


def test_role_needs_a_user_or_vacate() -> None:
    done = run_cli("incident", "role", "INC-1", "commander", "--url", "http://127.0.0.1:9")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip() == "fireline: give the USER who takes the role, or --vacate"


def test_json_output_is_json() -> None:
    done = run_cli("replay", "--json", "tests/histories/incident-sequence.json")
    assert done.returncode == 0
    assert json.loads(done.stdout)[0]["ok"] is True


def test_route_test_shows_the_matching_route_and_group() -> None:
    done = run_cli(
        "route",
        "test",
        "alertname=CheckoutDown",
        "service=checkout",
        "severity=critical",
        "--config",
        "fireline.example.yaml",
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:3] == ["ROUTE", "NAME", "MATCHERS"]
    assert lines[1].split()[:4] == ["0", "critical", 'severity="critical"', "checkout"]
    assert 'group key  {}/{severity="critical"}#0:' in done.stdout
    assert "correlates with open incidents of: checkout, payments-api, orders-db" in done.stdout


def test_route_test_rejects_a_malformed_label() -> None:
    done = run_cli("route", "test", "service", "--config", "fireline.example.yaml")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.startswith("fireline: malformed label 'service'")


def test_oncall_now_and_show_read_the_config() -> None:
    now = run_cli("oncall", "now", "--config", "fireline.example.yaml", "--json")
    assert now.returncode == 0, now.stderr
    [row] = json.loads(now.stdout)
    assert row["schedule"] == "payments-primary"
    assert row["user"] in {"alice", "bob"}
    shown = run_cli(
        "oncall",
        "show",
        "--schedule",
        "payments-primary",
        "--days",
        "21",
        "--config",
        "fireline.example.yaml",
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0] == "payments-primary (America/New_York), next 21 days"
    users = [line.split()[0] for line in lines[2:]]
    # A weekly rotation of two: they alternate.
    assert all(a != b for a, b in itertools.pairwise(users))
    assert set(users) == {"alice", "bob"}


def test_oncall_show_names_an_unknown_schedule() -> None:
    done = run_cli("oncall", "show", "--schedule", "nope", "--config", "fireline.example.yaml")
    assert done.returncode == EXIT_USAGE
    assert done.stderr.strip() == "fireline: unknown schedule 'nope'; known: payments-primary"

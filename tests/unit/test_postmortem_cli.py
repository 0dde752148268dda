"""``fireline postmortem`` and ``fireline actions``: arguments, requests and tables, against
a fake API (httpx MockTransport) answering like the real one."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from worker import cli
from worker.cli_postmortem import add_parsers, parse_when

Handler = Callable[[httpx.Request], httpx.Response]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def parser() -> argparse.ArgumentParser:
    """The two command groups as worker/cli.py will mount them."""
    client = argparse.ArgumentParser(add_help=False)
    cli._connection_flags(client)
    client.add_argument("--json", action="store_true")
    top = argparse.ArgumentParser(prog="fireline")
    add_parsers(top.add_subparsers(dest="command", required=True), client)
    return top


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Callable[[Handler], list[httpx.Request]]:
    def install(handler: Handler) -> list[httpx.Request]:
        sent: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            sent.append(request)
            return handler(request)

        def client(args: Any) -> cli.ApiClient:
            return cli.ApiClient(
                args.url, args.token, args.as_user, transport=httpx.MockTransport(record)
            )

        monkeypatch.setattr(cli, "_api", client)
        return sent

    return install


def run(*argv: str) -> int:
    args = parser().parse_args([*argv, "--as", "alice"])
    code: int = args.func(args)
    return code


ROW = {
    "id": "INC-7-A1",
    "incident_id": "INC-7",
    "title": "Alert on pool saturation",
    "owner": "bob",
    "priority": "P1",
    "kind": "detect",
    "due_at": "2026-11-20T17:00:00Z",
    "status": "open",
    "overdue": True,
    "escalated": True,
    "snoozed_until": None,
    "link": None,
    "reminders": 4,
}


def test_actions_list_overdue_asks_for_overdue_items_and_prints_a_table(
    api: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str]
) -> None:
    sent = api(lambda r: httpx.Response(200, json=[ROW]))
    assert run("actions", "list", "--overdue") == cli.EXIT_OK
    assert str(sent[0].url) == "http://127.0.0.1:8080/v1/action-items?overdue=true"
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "PRI", "KIND", "OWNER", "DUE", "STATUS", "TITLE"]
    assert "OVERDUE (escalated)" in out[1]
    assert out[1].startswith("INC-7-A1  P1   detect  bob")


def test_actions_add_sends_the_item_and_a_bad_due_date_is_a_usage_error(
    api: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str]
) -> None:
    sent = api(lambda r: httpx.Response(201, json={**ROW, "due_at": "2026-12-01T17:00:00Z"}))
    assert (
        run("actions", "add", "INC-7", "Alert on pool saturation", "--owner", "bob", "--due",
            "2026-12-01T17:00:00Z", "--kind", "detect", "--priority", "P1")
        == cli.EXIT_OK
    )  # fmt: skip
    assert sent[0].url.path == "/v1/postmortems/INC-7/action-items"
    assert json.loads(sent[0].content) == {
        "title": "Alert on pool saturation",
        "owner": "bob",
        "due_at": "2026-12-01T17:00:00+00:00",
        "priority": "P1",
        "kind": "detect",
    }
    assert capsys.readouterr().out.startswith("added INC-7-A1 for bob, due ")
    with pytest.raises(cli.CliError) as caught:
        run("actions", "add", "INC-7", "x", "--owner", "bob", "--due", "next tuesday")
    assert caught.value.code == cli.EXIT_USAGE
    assert str(caught.value).startswith("'next tuesday': expected a date (2026-12-01)")


def test_a_refusal_from_the_api_is_reported_with_its_reason(
    api: Callable[[Handler], list[httpx.Request]],
) -> None:
    reason = "due_at: 2026-11-01T17:00:00+00:00 is in the past (now 2026-11-28T12:00Z)"
    api(lambda r: httpx.Response(400, json={"error": "badrequest", "reason": reason}))
    with pytest.raises(cli.CliError) as caught:
        run("actions", "add", "INC-7", "x", "--owner", "bob", "--due", "2026-11-01")
    assert caught.value.code == cli.EXIT_REFUSED
    assert str(caught.value) == f"{reason} (HTTP 400)"


def test_postmortem_edit_prints_blameless_wording_hints(
    api: Callable[[Handler], list[httpx.Request]], capsys: pytest.CaptureFixture[str]
) -> None:
    hint = "'human error': 'human error' ends the inquiry; describe what made it easy"
    sent = api(lambda r: httpx.Response(200, json={"state": {}, "warnings": [hint]}))
    assert run("postmortem", "edit", "INC-7", "root_cause", "--text", "human error") == 0
    assert sent[0].method == "PUT"
    assert sent[0].url.path == "/v1/postmortems/INC-7/sections/root_cause"
    out = capsys.readouterr()
    assert out.out == "INC-7: root_cause saved\n"
    assert out.err == f"fireline: wording: {hint}\n"


def test_postmortem_publish_refused_names_the_empty_sections(
    api: Callable[[Handler], list[httpx.Request]],
) -> None:
    reason = (
        "cannot publish the postmortem of INC-7: required sections are empty: trigger (Trigger)"
    )
    api(lambda r: httpx.Response(409, json={"error": "conflict", "reason": reason}))
    with pytest.raises(cli.CliError) as caught:
        run("postmortem", "publish", "INC-7")
    assert (caught.value.code, str(caught.value)) == (cli.EXIT_REFUSED, f"{reason} (HTTP 409)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+3d", NOW + timedelta(days=3)),
        ("12h", NOW + timedelta(hours=12)),
        ("2026-12-01T09:00:00Z", datetime(2026, 12, 1, 9, tzinfo=UTC)),
        ("2026-12-01T09:00:00+01:00", datetime(2026, 12, 1, 8, tzinfo=UTC)),
    ],
)
def test_parse_when(text: str, expected: datetime) -> None:
    assert parse_when(text, NOW) == expected


def test_parse_when_a_bare_date_is_the_end_of_that_working_day_locally() -> None:
    when = parse_when("2026-12-01", NOW)
    assert when.tzinfo is not None
    assert (when.date().isoformat(), when.hour) == ("2026-12-01", 17)

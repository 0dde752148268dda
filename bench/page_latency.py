"""Alert in → first page delivered to a PagerDuty fake, against the embedded stack.

Three paths, measured in the same run against the same loopback PagerDuty fake:

1. fireline: ``POST /v1/alerts`` → alert group (``group_wait: 0``) → correlation → declare
   → incident → escalation → ``notify.send`` → PagerDuty Events API;
2. the bare-Temporal baseline: start a workflow → one activity → the same HTTP POST;
3. Alertmanager's own PagerDuty receiver (where ``prometheus-alertmanager`` is installed):
   push an alert → Alertmanager → the same fake, with ``group_wait: 0s``.

fireline does dedup, routing, correlation, declaration, escalation and recording that the
other two do not; the ratios say what that costs.

Usage: python -m bench.page_latency [--trials 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import yaml
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import pct
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.server import RecordedRequest, Reply
from tests.support import free_port
from worker.api import create_app
from worker.config import FirelineConfig
from worker.devserver import DevServer
from worker.process import api_server
from worker.runner import build_worker
from worker.settings import Settings
from worker.temporal_client import connect
from worker.wiring import activities

ROUTING_KEY = "B3NCHR0UT1NGKEYB3NCHR0UT1NGKEY12"
TASK_QUEUE = "bench-page-latency"


class TimedPagerDuty(FakePagerDuty):
    """The PagerDuty fake, noting when each trigger's summary first arrived."""

    def __init__(self) -> None:
        super().__init__([ROUTING_KEY])
        self.arrivals: dict[str, float] = {}
        self._guard = threading.Lock()

    def handle(self, request: RecordedRequest) -> Reply:
        """Stamp the arrival, then answer as PagerDuty would."""
        now = time.time()
        try:
            summary = str(request.json().get("payload", {}).get("summary", ""))
        except ValueError:
            summary = ""
        with self._guard:
            for marker in summary.split():
                if marker.startswith("trial-"):
                    self.arrivals.setdefault(marker, now)
        return super().handle(request)

    async def wait_for(self, marker: str, timeout: float = 60) -> float:
        """When ``marker`` arrived (epoch seconds)."""
        deadline = time.monotonic() + timeout
        while marker not in self.arrivals:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{marker} never reached the PagerDuty fake")
            await asyncio.sleep(0.005)
        return self.arrivals[marker]


def fireline_config(pd_url: str) -> FirelineConfig:
    """One on-call person paged through PagerDuty by every critical alert."""
    os.environ["BENCH_PD_ROUTING_KEY"] = ROUTING_KEY
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {
                    "name": "Alice Example",
                    "email": "alice@example.com",
                    "contact_methods": [{"kind": "pagerduty"}],
                }
            },
            "escalation_policies": {
                "bench": {"levels": [{"targets": [{"user": "alice"}], "delay": "1h"}]}
            },
            "routing": {
                "group_by": ["service", "alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "service": "{labels.service}",
                "escalation_policy": "bench",
                "declare": {"min_severity": "critical"},
            },
            "paging": {
                "pagerduty": {
                    "base_url": pd_url,
                    "routing_keys": {"default": {"env": "BENCH_PD_ROUTING_KEY"}},
                }
            },
        }
    )


async def fireline_trials(
    client: Client, pd: TimedPagerDuty, trials: int, state_dir: Path
) -> list[float]:
    """Alert → page latency through the whole fireline path."""
    config = fireline_config(pd.url)
    port = free_port()
    api = api_server(create_app(config, client, TASK_QUEUE), "127.0.0.1", port)
    settings = Settings(state_dir=state_dir, api_port=port)
    latencies: list[float] = []
    async with build_worker(client, TASK_QUEUE, activities(client, config, TASK_QUEUE, settings)):
        serving = asyncio.create_task(api.serve())
        while not api.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for i in range(trials):
                marker = f"trial-fireline-{i}"
                alert = {
                    # A new service each trial: a new incident, not a correlation.
                    "labels": {
                        "alertname": "BenchDown",
                        "service": f"bench-{i}",
                        "severity": "critical",
                    },
                    "annotations": {"summary": marker},
                }
                started = time.time()
                (await http.post("/v1/alerts", json=alert)).raise_for_status()
                latencies.append(await pd.wait_for(marker) - started)
        api.should_exit = True
        await serving
    return latencies


@activity.defn(name="bench.post_page")
async def post_page(args: list[str]) -> None:
    """The baseline's one activity: the same Events API call."""
    url, summary = args
    async with httpx.AsyncClient(timeout=10) as http:
        body = {
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": summary,
            "payload": {"summary": summary, "source": "bench", "severity": "critical"},
        }
        (await http.post(f"{url}/v2/enqueue", json=body)).raise_for_status()


@workflow.defn(name="BenchPage", sandboxed=False)
class PageWorkflow:
    """Start → one activity → done."""

    @workflow.run
    async def run(self, args: list[str]) -> None:
        """Page once."""
        await workflow.execute_activity(
            "bench.post_page", args, start_to_close_timeout=timedelta(seconds=10)
        )


async def baseline_trials(client: Client, pd: TimedPagerDuty, trials: int) -> list[float]:
    """Bare temporalio: start workflow → activity → HTTP POST."""
    queue = TASK_QUEUE + "-baseline"
    latencies: list[float] = []
    async with Worker(client, task_queue=queue, workflows=[PageWorkflow], activities=[post_page]):
        for i in range(trials):
            marker = f"trial-baseline-{i}"
            started = time.time()
            await client.start_workflow(
                PageWorkflow.run, [pd.url, marker], id=f"bench-page-{i}", task_queue=queue
            )
            latencies.append(await pd.wait_for(marker) - started)
    return latencies


def _start_alertmanager(
    pd: TimedPagerDuty, workdir: Path
) -> tuple[subprocess.Popen[bytes], int] | None:
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        return None
    port = free_port()
    config = {
        "route": {
            "receiver": "pd",
            "group_by": ["alertname", "trial"],
            "group_wait": "0s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "pd",
                "pagerduty_configs": [
                    {
                        "routing_key": ROUTING_KEY,
                        "url": f"{pd.url}/v2/enqueue",
                        "description": "{{ .CommonAnnotations.summary }}",
                    }
                ],
            }
        ],
    }
    (workdir / "am.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'am.yml'}",
            f"--storage.path={workdir / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return proc, port


async def alertmanager_trials(pd: TimedPagerDuty, trials: int, workdir: Path) -> list[float] | None:
    """Alertmanager's own PagerDuty receiver, pointed at the same fake."""
    started_am = await asyncio.to_thread(_start_alertmanager, pd, workdir)
    if started_am is None:
        return None
    proc, port = started_am
    latencies: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            for _ in range(200):
                try:
                    if (await http.get("/-/ready")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
            for i in range(trials):
                marker = f"trial-alertmanager-{i}"
                alert = [
                    {
                        "labels": {"alertname": "BenchDown", "trial": str(i)},
                        "annotations": {"summary": marker},
                    }
                ]
                started = time.time()
                (await http.post("/api/v2/alerts", json=alert)).raise_for_status()
                latencies.append(await pd.wait_for(marker) - started)
    finally:
        proc.terminate()
        await asyncio.to_thread(proc.wait, 10)
    return latencies


def row(name: str, values: list[float] | None, base: list[float]) -> list[str]:
    """One table row: p50, p99 and ratios to the bare-Temporal baseline."""
    if values is None:
        return [name, "-", "-", "not installed"]
    p50, p99 = pct(values, 50) * 1000, pct(values, 99) * 1000
    return [
        name,
        f"{p50:.0f} ms",
        f"{p99:.0f} ms",
        f"{p50 / (pct(base, 50) * 1000):.2f}x / {p99 / (pct(base, 99) * 1000):.2f}x",
    ]


async def main(args: argparse.Namespace) -> None:
    """All three paths against one fake and one fresh embedded server."""
    pd = TimedPagerDuty()
    pd.start()
    with tempfile.TemporaryDirectory() as tmp:
        server = DevServer(state_dir=Path(tmp) / "temporal", port=free_port(), ui_port=None)
        await server.start()
        try:
            client = await connect(Settings(temporal_address=server.address))
            base = await baseline_trials(client, pd, args.trials)
            ours = await fireline_trials(client, pd, args.trials, Path(tmp) / "state")
            am = await alertmanager_trials(pd, args.trials, Path(tmp))
        finally:
            await server.stop()
            pd.stop()
    rows = [
        ["path", "p50", "p99", "ratio to baseline (p50 / p99)"],
        row("bare temporalio start → activity → POST", base, base),
        row("fireline alert → page", ours, base),
        row("Alertmanager → PagerDuty receiver", am, base),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    print(f"{args.trials} trials each, one at a time, {os.cpu_count()} cores")
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)))
    if am is not None:
        print(f"fireline / Alertmanager p99: {pct(ours, 99) / pct(am, 99):.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=30)
    asyncio.run(main(parser.parse_args()))

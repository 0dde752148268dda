"""Alert storm: N alerts in Alertmanager batches over S services, against the embedded stack.

Prints alerts/s ingested, incidents declared, the dedup ratio, alert→incident latency
p50/p99, and — measured in the same run, on the same Temporal dev server — a bare temporalio
signal-with-start loop with the same number of round trips and the same concurrency, as
the baseline. The ratio of per-round-trip costs is fireline's overhead (HTTP, validation,
routing, the group workflow) over what Temporal itself costs.

Usage: python -m bench.alert_storm [--alerts 10000] [--services 50] [--batch 50]
       [--concurrency 16] [--redeliver 0.1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import pct
from tests.support import free_port
from worker.api import create_app
from worker.config import FirelineConfig
from worker.devserver import DevServer
from worker.process import api_server
from worker.runner import build_worker
from worker.settings import Settings
from worker.temporal_client import connect
from worker.wiring import activities

TASK_QUEUE = "bench-alert-storm"


@workflow.defn(name="BenchBaseline", sandboxed=False)
class BaselineWorkflow:
    """The least a signal-with-start can cost: a workflow that counts signals."""

    def __init__(self) -> None:
        self.count = 0

    @workflow.run
    async def run(self) -> None:
        """Live until told it has seen enough."""
        await workflow.wait_condition(lambda: self.count < 0)

    @workflow.signal
    def hit(self, _: int) -> None:
        """One batch."""
        self.count += 1


@dataclass
class Batch:
    """One Alertmanager webhook delivery: one group's alerts."""

    service: str
    alertname: str
    body: dict[str, Any]
    alerts: int


def make_batches(alerts: int, services: int, batch: int) -> list[Batch]:
    """Critical alerts spread over services, each batch one (service, alertname) group."""
    out: list[Batch] = []
    n = 0
    while n < alerts:
        i = len(out)
        service = f"svc-{i % services:02d}"
        alertname = f"Alert{(i // services) % 4}"
        size = min(batch, alerts - n)
        items = [
            {
                "status": "firing",
                "labels": {
                    "alertname": alertname,
                    "service": service,
                    "severity": "critical",
                    "instance": f"{service}-{i}-{k}",
                },
                "annotations": {"summary": f"{alertname} on {service}"},
                "startsAt": "2026-11-27T09:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.example.com/graph",
            }
            for k in range(size)
        ]
        body = {
            "version": "4",
            "groupKey": f"{{}}:{{alertname={alertname!r},service={service!r}}}",
            "truncatedAlerts": 0,
            "status": "firing",
            "receiver": "fireline",
            "groupLabels": {"alertname": alertname, "service": service},
            "commonLabels": {"alertname": alertname, "service": service},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager.example.com",
            "alerts": items,
        }
        out.append(Batch(service, alertname, body, size))
        n += size
    return out


def bench_config() -> FirelineConfig:
    """Route everything with no group_wait: Alertmanager already waited."""
    return FirelineConfig.model_validate(
        {
            "routing": {
                "group_by": ["service", "alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "service": "{labels.service}",
                "declare": {"min_severity": "critical"},
            }
        }
    )


async def run_pool(jobs: list[Any], concurrency: int) -> list[float]:
    """Run coroutine factories with bounded concurrency; return each one's latency."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            started = time.perf_counter()
            await job()
            latencies.append(time.perf_counter() - started)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


async def fireline_run(
    client: Client,
    batches: list[Batch],
    deliveries: list[Batch],
    concurrency: int,
    state_dir: Path,
) -> dict[str, Any]:
    """Post every delivery to the API; wait until every group's incident is declared."""
    config = bench_config()
    port = free_port()
    api = api_server(create_app(config, client, TASK_QUEUE), "127.0.0.1", port)
    first_post: dict[str, float] = {}
    async with build_worker(
        client,
        TASK_QUEUE,
        activities(client, config, TASK_QUEUE, Settings(state_dir=state_dir)),
        max_concurrent_activities=16,
    ):
        serving = asyncio.create_task(api.serve())
        while not api.started:
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:

            def job(b: Batch) -> Any:
                async def post() -> None:
                    first_post.setdefault(b.service, time.time())
                    r = await http.post("/v1/alerts/alertmanager", json=b.body)
                    r.raise_for_status()

                return post

            started = time.perf_counter()
            latencies = await run_pool([job(b) for b in deliveries], concurrency)
            ingest_seconds = time.perf_counter() - started
            declared = await wait_for_incidents(http, {b.service for b in batches}, timeout=300)
        api.should_exit = True
        await serving
    to_incident = [declared[s] - first_post[s] for s in declared if s in first_post]
    return {
        "ingest_seconds": ingest_seconds,
        "post_latencies": latencies,
        "incidents": len(declared),
        "to_incident": to_incident,
    }


async def wait_for_incidents(
    http: httpx.AsyncClient, services: set[str], timeout: float
) -> dict[str, float]:
    """service → first time (epoch s) fireline listed an incident for it."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    headers = {"X-Fireline-User": "bench"}
    while len(seen) < len(services) and time.monotonic() < deadline:
        rows = (await http.get("/v1/incidents", params={"limit": 1000}, headers=headers)).json()
        for row in rows:
            service = row.get("service")
            if service in services and service not in seen and row.get("declared_at"):
                # declared_at is the workflow's clock: the moment the incident existed.
                seen[service] = datetime.fromisoformat(row["declared_at"]).timestamp()
        if len(seen) < len(services):
            await asyncio.sleep(0.2)
    return seen


async def baseline_run(client: Client, deliveries: list[Batch], concurrency: int) -> float:
    """The same round trips as bare signal-with-starts; returns wall seconds."""
    queue = TASK_QUEUE + "-baseline"
    async with Worker(client, task_queue=queue, workflows=[BaselineWorkflow]):

        def job(i: int, b: Batch) -> Any:
            async def call() -> None:
                await client.start_workflow(
                    BaselineWorkflow.run,
                    id=f"baseline-{b.service}-{b.alertname}",
                    task_queue=queue,
                    start_signal="hit",
                    start_signal_args=[i],
                    execution_timeout=timedelta(hours=1),
                )

            return call

        started = time.perf_counter()
        await run_pool([job(i, b) for i, b in enumerate(deliveries)], concurrency)
        return time.perf_counter() - started


async def main(args: argparse.Namespace) -> None:
    """Run fireline and the baseline on one fresh embedded server and print the table."""
    batches = make_batches(args.alerts, args.services, args.batch)
    rng = random.Random(7)
    deliveries = batches + rng.sample(batches, int(len(batches) * args.redeliver))
    rng.shuffle(deliveries)
    with tempfile.TemporaryDirectory() as tmp:
        server = DevServer(state_dir=Path(tmp), port=free_port(), ui_port=None)
        await server.start()
        try:
            client = await connect(Settings(temporal_address=server.address))
            ours = await fireline_run(client, batches, deliveries, args.concurrency, Path(tmp))
            base_seconds = await baseline_run(client, deliveries, args.concurrency)
        finally:
            await server.stop()
    sent_alerts = sum(b.alerts for b in deliveries)
    trips = len(deliveries)
    ours_per_trip = ours["ingest_seconds"] / trips
    base_per_trip = base_seconds / trips
    rows = [
        ("machine", f"{platform.machine()}, {_cores()} cores, Python {platform.python_version()}"),
        ("alerts sent (incl. re-deliveries)", f"{sent_alerts}"),
        ("webhook deliveries (round trips)", f"{trips}"),
        ("alerts/s ingested", f"{sent_alerts / ours['ingest_seconds']:.0f}"),
        # A service's second group joins the first group's open incident (correlation).
        (
            "incidents declared / services / groups",
            f"{ours['incidents']} / {len({b.service for b in batches})} / "
            f"{len({(b.service, b.alertname) for b in batches})}",
        ),
        ("dedup ratio (re-delivered / sent)", f"{(trips - len(batches)) / trips:.2f}"),
        (
            "POST latency p50 / p99",
            f"{pct(ours['post_latencies'], 50) * 1000:.0f} / "
            f"{pct(ours['post_latencies'], 99) * 1000:.0f} ms",
        ),
        (
            "alert→incident p50 / p99",
            f"{pct(ours['to_incident'], 50) * 1000:.0f} / "
            f"{pct(ours['to_incident'], 99) * 1000:.0f} ms",
        ),
        ("fireline per round trip", f"{ours_per_trip * 1000:.1f} ms"),
        ("baseline per round trip", f"{base_per_trip * 1000:.1f} ms (bare signal-with-start)"),
        ("ratio fireline / baseline", f"{ours_per_trip / base_per_trip:.2f}x"),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")


def _cores() -> int:
    return os.cpu_count() or 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--redeliver", type=float, default=0.1)
    asyncio.run(main(parser.parse_args()))

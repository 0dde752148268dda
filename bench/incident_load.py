"""N open incidents on one worker: memory per incident and escalation timer lateness.

Each incident is a real IncidentWorkflow with its EscalationWorkflow child: level 1 pages
alice at once, then waits on its level timer; when the timer fires, the escalation records
"escalated" on the incident's timeline and pages carol. The level timers are due one after
another, evenly over ``--spread`` seconds, after every incident has been declared, so the
timers fire while all N incidents are open.

- memory per incident: the worker process's RSS (VmRSS) once all N incidents wait on their
  timer, minus its RSS before the first was declared, over N. The worker caches every open
  workflow (``--cache``, default all of them), so this is what an open incident costs.
- timer lateness: carol's page time (the ``notify.send`` activity starting) minus the level
  timer's due time (its TimerStarted event time + the delay, read from the escalation's
  history afterwards). The server-side part (TimerFired - due) is shown too.

Baseline, in the same command on the same dev server: N bare temporalio workflows
(``bench.common.SleepThenPage``, sandboxed like fireline's), each sleeping until a due time
on the same schedule, then calling one activity. Each side runs in its own child process, so
one side's heap does not hide the other's growth. ``notify.send`` is replaced by an activity
that only notes the time: paging a vendor is page_latency.py's subject, not this one's.

Usage: python -m bench.incident_load [--incidents 5000] [--spread S] [--lead S] [--baseline-lead S]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import PollerBehaviorAutoscaling, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.contracts import Page, PageResult
from bench.common import (
    SleepThenPage,
    machine,
    pct,
    print_table,
    progress,
    ratio,
    rss_bytes,
    run_main,
)
from tests.support import free_port
from worker.config import FirelineConfig
from worker.devserver import DevServer
from worker.runner import SharedWorkflowCode, build_worker
from worker.settings import Settings
from worker.temporal_client import connect
from workflows.contracts import ConfigSnapshot, DeclareIncident, Severity
from workflows.incident import IncidentWorkflow

TASK_QUEUE = "bench-incident-load"
CONCURRENCY = 16
# Never start a level timer shorter than this, even when declaring ran late.
MIN_DELAY = timedelta(seconds=5)


class PageClock:
    """When each page's activity started (epoch seconds), by key."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}

    def fake_send(self) -> Any:
        """A ``notify.send`` that notes the time and answers as a delivered page."""

        @activity.defn(name="notify.send")
        async def send(page: Page) -> PageResult:
            self.at.setdefault(f"{page.incident_id}/{page.recipient}", time.time())
            return PageResult(
                provider=page.contact.kind,
                delivered=True,
                external_id=page.dedup_key,
                dedup_key=page.dedup_key,
            )

        return send

    def bare_page(self) -> Any:
        """The baseline's activity: note the time."""

        @activity.defn(name="bench.page")
        async def page(key: str) -> None:
            self.at.setdefault(key, time.time())

        return page


def bench_config() -> FirelineConfig:
    """Two people and one two-level policy; level 1's delay is set per incident."""
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice Example", "email": "alice@example.com"},
                "carol": {"name": "Carol Example", "email": "carol@example.com"},
            },
            "escalation_policies": {
                "bench": {
                    "levels": [
                        {"targets": [{"user": "alice"}], "delay": "1h"},
                        {"targets": [{"user": "carol"}], "delay": "1h"},
                    ]
                }
            },
            "services": {"checkout": {"escalation_policy": "bench"}},
        }
    )


def for_incident(snap: ConfigSnapshot, incident_id: str, delay: timedelta) -> ConfigSnapshot:
    """The snapshot made this incident's (pages carry its id), level 1's delay replaced."""
    assert snap.escalation is not None
    policy = snap.escalation.policy
    levels = list(policy.levels)
    levels[0] = levels[0].model_copy(update={"delay": delay})
    escalation = snap.escalation.model_copy(
        update={
            "incident_id": incident_id,
            "policy": policy.model_copy(update={"levels": levels}),
        }
    )
    return snap.model_copy(update={"escalation": escalation})


class Schedule:
    """Due times: ``lead`` after the start, then one every ``spread / n`` seconds."""

    def __init__(self, n: int, lead: float, spread: float) -> None:
        self.start = time.time()
        self.n, self.lead, self.spread = n, lead, spread

    def due(self, i: int) -> float:
        """Epoch seconds at which item i's timer is due (never sooner than MIN_DELAY)."""
        planned = self.start + self.lead + self.spread * i / max(1, self.n)
        return max(planned, time.time() + MIN_DELAY.total_seconds())

    @property
    def last(self) -> float:
        """When the last planned timer is due."""
        return self.start + self.lead + self.spread


async def run_pool(jobs: list[Any], concurrency: int, label: str) -> None:
    """Run coroutine factories with bounded concurrency, reporting progress."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    done = 0
    every = max(1, len(jobs) // 10)

    async def worker() -> None:
        nonlocal done
        while not queue.empty():
            await queue.get_nowait()()
            done += 1
            if done % every == 0:
                progress(f"{label}: {done}/{len(jobs)}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def wait_for(clock: PageClock, keys: list[str], timeout: float, label: str) -> None:
    """Until every key has a page, or the timeout."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        seen = sum(1 for k in keys if k in clock.at)
        if seen == len(keys):
            return
        if seen != last and seen % max(1, len(keys) // 10) < 5:
            progress(f"{label}: {seen}/{len(keys)}")
        last = seen
        await asyncio.sleep(0.5)
    progress(f"{label}: timed out with {sum(1 for k in keys if k in clock.at)}/{len(keys)}")


def poll_options(args: argparse.Namespace) -> dict[str, Any]:
    """Workflow-task polling for both sides' workers; empty: the SDK defaults fireline uses."""
    options: dict[str, Any] = {}
    if args.wf_polls:
        options["max_concurrent_workflow_task_polls"] = args.wf_polls
    if args.nonsticky_ratio:
        options["nonsticky_to_sticky_poll_ratio"] = args.nonsticky_ratio
    if args.wf_autoscale:
        options["workflow_task_poller_behavior"] = PollerBehaviorAutoscaling()
    return options


class Meter:
    """The worker process's CPU time and garbage-collector pauses, read at phase ends.

    CPU covers the whole side's process (worker and the client starting workflows), the
    same on both sides; GC pauses show whether a heap of N cached runs makes the collector
    the bottleneck.
    """

    def __init__(self, server_pid: int = 0) -> None:
        self.server_pid = server_pid
        self.gc_seconds = 0.0
        self.gc_full = 0
        self._gc_started = 0.0
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_seconds += time.perf_counter() - self._gc_started
            self.gc_full += info.get("generation") == 2

    @staticmethod
    def cpu() -> float:
        """CPU seconds (user + system) this process has used."""
        times = os.times()
        return times.user + times.system

    def server_cpu(self) -> float:
        """CPU seconds the Temporal dev server has used (0 when its pid is unknown)."""
        if not self.server_pid:
            return 0.0
        try:
            with open(f"/proc/{self.server_pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # utime and stime are fields 14 and 15 of stat(5); 12 and 13 after the name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reading(self) -> dict[str, float]:
        """CPU (ours and the server's), GC seconds and full collections so far."""
        return {
            "cpu": self.cpu(),
            "server_cpu": self.server_cpu(),
            "gc": self.gc_seconds,
            "gc_full": float(self.gc_full),
        }


def settle_rss() -> int:
    """RSS after a full collection, so garbage does not count as an incident's memory."""
    gc.collect()
    return rss_bytes()


async def fireline_side(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """Declare N incidents, let their level timers fire, measure."""
    n = args.incidents
    clock = PageClock()
    config = bench_config()
    base_snap = config.snapshot("checkout", "LOAD-0")
    run_tag = f"{int(time.time())}"
    ids = [f"LOAD-{run_tag}-{i}" for i in range(n)]

    def declare(incident_id: str, delay: timedelta) -> DeclareIncident:
        return DeclareIncident(
            id=incident_id,
            title="Checkout errors (load bench)",
            service="checkout",
            severity=Severity.SEV2,
            declared_by="alice",
            config=for_incident(base_snap, incident_id, delay),
        )

    options = poll_options(args)
    if args.side == "fireline-sdk-sandbox":
        # fireline's workflows as they ran before worker.runner's sandbox set-up.
        options["workflow_runner"] = SandboxedWorkflowRunner()
    worker = build_worker(
        client,
        TASK_QUEUE,
        [clock.fake_send()],
        max_cached_workflows=args.cache or 2 * n + 100,
        **options,
    )
    if args.side == "fireline-sdk-sandbox":
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, SharedWorkflowCode)]
    async with worker:
        # Warm up imports, the sandbox and the connections with one incident of its own.
        warm = f"LOAD-{run_tag}-warm"
        await client.start_workflow(
            IncidentWorkflow.run,
            declare(warm, timedelta(hours=1)),
            id=f"incident-{warm}",
            task_queue=TASK_QUEUE,
        )
        await wait_for(clock, [f"{warm}/alice"], 60, "warm-up")
        rss_before = settle_rss()
        meter = Meter(args.server_pid)
        at_start = meter.reading()
        schedule = Schedule(n, args.lead, args.spread)

        def job(i: int) -> Any:
            async def start() -> None:
                delay = timedelta(seconds=schedule.due(i) - time.time())
                await client.start_workflow(
                    IncidentWorkflow.run,
                    declare(ids[i], delay),
                    id=f"incident-{ids[i]}",
                    task_queue=TASK_QUEUE,
                )

            return start

        started = time.perf_counter()
        await run_pool([job(i) for i in range(n)], CONCURRENCY, "declared")
        declared_in = time.perf_counter() - started
        # Open means paging has begun: level 1 paged, the level timer running.
        await wait_for(
            clock, [f"{i}/alice" for i in ids], max(60, n / 2, 2 * args.lead), "level 1 paged"
        )
        open_at = time.time()
        at_open = meter.reading()
        rss_after = settle_rss()
        progress(f"all open {open_at - schedule.start:.0f}s after the first declaration")
        # A level timer starts when its escalation first runs, so a slow opening pushes
        # every due time back by up to the time opening took: wait that much longer.
        opening_lag = open_at - schedule.start
        await wait_for(
            clock,
            [f"{i}/carol" for i in ids],
            max(0.0, schedule.last - time.time()) + opening_lag + 120 + n / 10,
            "level 2 paged",
        )
        at_end = meter.reading()
    # Due times from the escalations' histories: TimerStarted time + its delay.
    page_late: list[float] = []
    fire_late: list[float] = []
    early = 0

    async def timer_of(incident_id: str) -> None:
        nonlocal early
        history = await client.get_workflow_handle(f"escalation-{incident_id}").fetch_history()
        started_at = fired_at = None
        due = 0.0
        for event in history.events:
            if event.HasField("timer_started_event_attributes") and started_at is None:
                started_at = event.event_time.ToDatetime(UTC).timestamp()
                delay = event.timer_started_event_attributes.start_to_fire_timeout
                due = started_at + delay.ToTimedelta().total_seconds()
            elif event.HasField("timer_fired_event_attributes") and fired_at is None:
                fired_at = event.event_time.ToDatetime(UTC).timestamp()
        paged = clock.at.get(f"{incident_id}/carol")
        if started_at is None or fired_at is None or paged is None:
            return
        if incident_id == ids[0]:
            # The hops of one escalation after its timer was due, for the table's reader.
            for event in history.events:
                at = event.event_time.ToDatetime(UTC).timestamp()
                if at >= due - 0.001:
                    kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
                    progress(f"hop trace {incident_id}: +{(at - due) * 1000:6.0f} ms  {kind}")
            progress(f"hop trace {incident_id}: +{(paged - due) * 1000:6.0f} ms  page sent")
        if due < open_at:
            early += 1
        fire_late.append(fired_at - due)
        page_late.append(paged - due)

    await run_pool([(lambda i=i: timer_of(i)) for i in ids], 8, "histories read")
    return {
        "n": n,
        "declared_per_s": n / declared_in,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "page_late": page_late,
        "fire_late": fire_late,
        "due_before_all_open": early,
        "open_after_s": open_at - schedule.start,
        "meter": [at_start, at_open, at_end],
    }


async def baseline_side(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """N bare workflows sleeping to due times on the same schedule, then one activity."""
    n = args.incidents
    clock = PageClock()
    queue = TASK_QUEUE + "-baseline"
    run_tag = f"{int(time.time())}"
    keys = [f"bare-{run_tag}-{i}" for i in range(n)]
    due: dict[str, float] = {}
    async with Worker(
        client,
        task_queue=queue,
        workflows=[SleepThenPage],
        activities=[clock.bare_page()],
        max_cached_workflows=args.cache or 2 * n + 100,
        **poll_options(args),
    ):
        warm = f"bare-{run_tag}-warm"
        await client.execute_workflow(
            SleepThenPage.run, args=[warm, datetime.now(UTC).isoformat()], id=warm, task_queue=queue
        )
        rss_before = settle_rss()
        meter = Meter(args.server_pid)
        at_start = meter.reading()
        # Bare workflows open in a fraction of fireline's time; a lead of their own keeps the
        # timers due after all N are open, as on fireline's side, without idling for it.
        schedule = Schedule(n, args.baseline_lead, args.spread)

        def job(i: int) -> Any:
            async def start() -> None:
                due[keys[i]] = schedule.due(i)
                at = datetime.fromtimestamp(due[keys[i]], UTC).isoformat()
                await client.start_workflow(
                    SleepThenPage.run, args=[keys[i], at], id=keys[i], task_queue=queue
                )

            return start

        started = time.perf_counter()
        await run_pool([job(i) for i in range(n)], CONCURRENCY, "started")
        declared_in = time.perf_counter() - started
        # Every workflow has run its first task (its timer is set) once history says so;
        # a short wait covers the last few, the sleepers themselves take no more tasks.
        await asyncio.sleep(5)
        open_at = time.time()
        at_open = meter.reading()
        rss_after = settle_rss()
        await wait_for(clock, keys, max(0.0, schedule.last - time.time()) + 120 + n / 10, "paged")
        at_end = meter.reading()
    page_late = [clock.at[k] - due[k] for k in keys if k in clock.at]
    return {
        "n": n,
        "declared_per_s": n / declared_in,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "page_late": page_late,
        "fire_late": [],
        "due_before_all_open": sum(1 for k in keys if due[k] < open_at),
        "open_after_s": open_at - schedule.start,
        "meter": [at_start, at_open, at_end],
    }


async def child(args: argparse.Namespace) -> None:
    """One side, in this process; the result is the last line of stdout, as JSON."""
    client = await connect(Settings(temporal_address=args.address))
    side = baseline_side if args.side == "baseline" else fireline_side
    result = await side(client, args)
    print(json.dumps(result), flush=True)


def run_side(side: str, address: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run one side as a child process (its own heap); stderr passes through."""
    cmd = [
        sys.executable,
        "-m",
        "bench.incident_load",
        "--side",
        side,
        "--address",
        address,
        "--incidents",
        str(args.incidents),
        "--lead",
        str(args.lead),
        "--baseline-lead",
        str(args.baseline_lead),
        "--spread",
        str(args.spread),
        "--cache",
        str(args.cache),
        "--wf-polls",
        str(args.wf_polls),
        "--nonsticky-ratio",
        str(args.nonsticky_ratio),
        *(["--wf-autoscale"] if args.wf_autoscale else []),
        "--server-pid",
        str(args.server_pid),
    ]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, text=True).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def _cpu(r: dict[str, Any], start: int, end: int, key: str = "cpu") -> float:
    """Seconds of ``key`` per item between two meter readings."""
    meter = r["meter"]
    return float(meter[end][key] - meter[start][key]) / int(r["n"])


def _cpu_ms(r: dict[str, Any], start: int, end: int) -> str:
    return f"{_cpu(r, start, end) * 1000:.1f}"


def _gc(r: dict[str, Any]) -> str:
    first, last = r["meter"][0], r["meter"][2]
    return f"{last['gc'] - first['gc']:.1f} s ({last['gc_full'] - first['gc_full']:.0f})"


def _ms(values: list[float], q: float) -> str:
    return f"{pct(values, q) * 1000:.0f} ms" if values else "-"


async def main(args: argparse.Namespace) -> None:
    """Both sides on one fresh embedded server (fireline's flags), then the table."""
    if args.side:
        await child(args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        server = DevServer(state_dir=Path(tmp), port=free_port(), ui_port=None)
        await server.start()
        proc = getattr(server, "_proc", None)
        args.server_pid = proc.pid if proc is not None else 0
        try:
            progress(f"fireline: {args.incidents} incidents")
            ours = await asyncio.to_thread(run_side, "fireline", server.address, args)
            sdk: dict[str, Any] | None = None
            if args.compare_sdk_sandbox:
                progress(f"fireline with the SDK's default sandbox: {args.incidents} incidents")
                sdk = await asyncio.to_thread(
                    run_side, "fireline-sdk-sandbox", server.address, args
                )
            progress(f"baseline: {args.incidents} bare workflows")
            base = await asyncio.to_thread(run_side, "baseline", server.address, args)
        finally:
            await server.stop()

    sides = [("fireline", ours)]
    if sdk is not None:
        sides.append(("fireline, SDK sandbox", sdk))
    sides.append(("bare temporalio", base))
    polls = poll_options(args) or "SDK default workflow-task polling"
    print(
        f"{machine()}; N = {args.incidents}; timers due over {args.spread:.0f} s from "
        f"{args.lead:.0f} s (fireline) / {args.baseline_lead:.0f} s (bare) after the first "
        f"start; {polls}"
    )
    print_table(table(sides))


def _per_item_rss(r: dict[str, Any]) -> float:
    return float(r["rss_after"] - r["rss_before"]) / int(r["n"])


def table(sides: list[tuple[str, dict[str, Any]]]) -> list[list[str]]:
    """One column per side (the last is the baseline), then each fireline side's ratio."""
    mib = 1024 * 1024
    base = sides[-1][1]
    ours = [r for _, r in sides[:-1]]
    header = ["figure", *(name for name, _ in sides)]
    header += [f"ratio ({name})" if len(ours) > 1 else "ratio" for name, _ in sides[:-1]]

    def row(label: str, cell: Any, value: Any = None) -> list[str]:
        cells = [label, *(cell(r) for _, r in sides)]
        cells += [ratio(value(r), value(base)) if value else "" for r in ours]
        return cells

    def late(q: float) -> Any:
        return lambda r: pct(r["page_late"], q)

    return [
        header,
        row(
            "worker RSS before → all open",
            lambda r: f"{r['rss_before'] / mib:.0f} → {r['rss_after'] / mib:.0f} MiB",
        ),
        row(
            "memory per open incident / workflow",
            lambda r: f"{_per_item_rss(r) / 1024:.1f} KiB",
            _per_item_rss,
        ),
        row(
            "declared (started) per second",
            lambda r: f"{r['declared_per_s']:.1f}",
            lambda r: r["declared_per_s"],
        ),
        row(
            "all open after the first start (bare: fixed wait)",
            lambda r: f"{r['open_after_s']:.0f} s",
        ),
        row(
            "process CPU per incident / workflow: start → open",
            lambda r: f"{_cpu_ms(r, 0, 1)} ms",
            lambda r: _cpu(r, 0, 1),
        ),
        row(
            "process CPU per incident / workflow: open → paged after timer",
            lambda r: f"{_cpu_ms(r, 1, 2)} ms",
            lambda r: _cpu(r, 1, 2),
        ),
        row(
            "dev server CPU per incident / workflow: start → open",
            lambda r: f"{_cpu(r, 0, 1, 'server_cpu') * 1000:.1f} ms",
            lambda r: _cpu(r, 0, 1, "server_cpu"),
        ),
        row(
            "dev server CPU per incident / workflow: open → paged",
            lambda r: f"{_cpu(r, 1, 2, 'server_cpu') * 1000:.1f} ms",
            lambda r: _cpu(r, 1, 2, "server_cpu"),
        ),
        row("GC pauses, whole run (full collections)", _gc),
        row("timer lateness p50 (page - due)", lambda r: _ms(r["page_late"], 50), late(50)),
        row("timer lateness p99 (page - due)", lambda r: _ms(r["page_late"], 99), late(99)),
        row(
            "server timer lateness p50 / p99 (fired - due)",
            lambda r: (
                f"{_ms(r['fire_late'], 50)} / {_ms(r['fire_late'], 99)}" if r["fire_late"] else "-"
            ),
        ),
        row(
            "pages measured / timers due before all were open",
            lambda r: f"{len(r['page_late'])} / {r['due_before_all_open']}",
        ),
    ]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--incidents", type=int, default=5000, help="open incidents (N)")
    parser.add_argument(
        "--lead",
        type=float,
        default=None,
        help="seconds from the first declaration to the first due timer (default: N/5 + 30)",
    )
    parser.add_argument(
        "--baseline-lead",
        type=float,
        default=None,
        help="the same for the bare workflows, which open faster (default: N/25 + 60)",
    )
    parser.add_argument(
        "--spread",
        type=float,
        default=None,
        help="seconds over which the N timers fall due (default: N/10)",
    )
    parser.add_argument(
        "--cache", type=int, default=0, help="worker max_cached_workflows (default: 2N + 100)"
    )
    parser.add_argument(
        "--wf-polls", type=int, default=0, help="max_concurrent_workflow_task_polls (SDK: 5)"
    )
    parser.add_argument(
        "--nonsticky-ratio",
        type=float,
        default=0.0,
        help="nonsticky_to_sticky_poll_ratio (SDK: 0.2); new workflows' first tasks are non-sticky",
    )
    parser.add_argument(
        "--wf-autoscale",
        action="store_true",
        help="workflow-task poller autoscaling (PollerBehaviorAutoscaling, server >= 1.28)",
    )
    parser.add_argument(
        "--compare-sdk-sandbox",
        action="store_true",
        help="also run the fireline side with the SDK's default sandbox (the runner before "
        "worker.runner's sandbox set-up), as a third column",
    )
    parser.add_argument(
        "--side",
        choices=["fireline", "fireline-sdk-sandbox", "baseline"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.lead is None:
        parsed.lead = parsed.incidents / 5 + 30
    if parsed.baseline_lead is None:
        parsed.baseline_lead = parsed.incidents / 25 + 60
    if parsed.spread is None:
        parsed.spread = parsed.incidents / 10
    run_main(main(parsed))

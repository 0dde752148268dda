"""Replay of a ~10,000-event IncidentWorkflow history vs a trivial one of the same length.

The incident's history is real: an open incident whose alert flaps (firing, resolved,
firing, ...) for as many ``alerts_changed`` signals as it takes to reach ``--events``, on a
dev server and incident settings with continue-as-new pushed out of the way. The baseline
is ``bench.common.Counter``, a workflow that only counts, driven by the same number of
signals the same way until its history has at least as many events. Both replay with the
SDK's ``Replayer`` (sandboxed, fireline's data converter), alternately, ``--repeat`` times;
the table shows the medians, per history and per event.

It also reports what one ``add_note`` Update writes once the timeline is that long: every
incident Update returns the whole state, timeline included (UpdateResult.state).

Usage: python -m bench.replay [--events 10000] [--repeat 5] [--save DIR | --load DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, Worker

from bench.common import Counter, machine, print_table, progress, ratio, run_main
from tests.support import demo_config, free_port
from worker.devserver import DevServer
from worker.replay import load_history
from worker.runner import WORKFLOWS, build_worker
from worker.settings import Settings
from worker.temporal_client import connect, data_converter
from workflows.alerts import AlertStatus
from workflows.contracts import (
    AddNote,
    AlertChange,
    AlertsChanged,
    DeclareIncident,
    IncidentSettings,
    Severity,
)
from workflows.incident import IncidentWorkflow

TASK_QUEUE = "bench-replay"
# Continue-as-new would cut the history short: the server's suggestion (4,096 events) and
# the incident's own limit are both pushed past the target.
NO_CONTINUE_AS_NEW = {
    "limit.historyCount.suggestContinueAsNew": "1000000",
    "limit.historySize.suggestContinueAsNew": "45000000",
}
SENDERS = 2


async def drive(handle: WorkflowHandle[Any, Any], events: int, send: Any, label: str) -> int:
    """Signal until the history holds at least ``events`` events; return the signal count."""
    sent = 0
    while True:
        length = (await handle.describe()).raw_description.workflow_execution_info.history_length
        if length >= events:
            return sent
        # Signals in flight at once, like a busy incident; checked again every batch.
        batch = max(SENDERS, min(200, (events - length) // 4))
        await asyncio.gather(
            *(_sender(send, list(range(sent + k, sent + batch, SENDERS))) for k in range(SENDERS))
        )
        sent += batch
        progress(f"{label}: {length} events, {sent} signals")


async def _sender(send: Any, numbers: list[int]) -> None:
    for i in numbers:
        await send(i)


def flap(i: int) -> AlertsChanged:
    """The i-th change of one flapping alert: firing on even i, resolved on odd."""
    start = datetime(2026, 11, 28, 3, 0, tzinfo=UTC) + timedelta(minutes=i // 2)
    firing = i % 2 == 0
    return AlertsChanged(
        group_key='{}:{alertname="CheckoutErrors",service="checkout"}',
        changes=[
            AlertChange(
                fingerprint="3f2a9c41d0b7e815",
                alertname="CheckoutErrors",
                status=AlertStatus.FIRING if firing else AlertStatus.RESOLVED,
                summary=f"checkout 5xx ratio above 5% (flap {i})",
                labels={"alertname": "CheckoutErrors", "service": "checkout"},
                starts_at=start,
                ends_at=None if firing else start + timedelta(seconds=30),
            )
        ],
    )


async def build(client: Client, events: int) -> tuple[WorkflowHistory, WorkflowHistory, int]:
    """Record both histories; also return the bytes one add_note Update writes at the end."""
    config = demo_config().snapshot("checkout")
    config = config.model_copy(
        update={"settings": IncidentSettings(max_history_events=1_000_000_000)}
    )
    inp = DeclareIncident(
        id="INC-REPLAY",
        title="Checkout errors after deploy 1.4.0",
        service="checkout",
        severity=Severity.SEV2,
        declared_by="alice",
        config=config,
    )
    async with build_worker(client, TASK_QUEUE, []):
        incident = await client.start_workflow(
            IncidentWorkflow.run, inp, id="incident-INC-REPLAY", task_queue=TASK_QUEUE
        )

        async def to_incident(i: int) -> None:
            await incident.signal(IncidentWorkflow.alerts_changed, flap(i))

        # Keep the last events free for the one Update measured below.
        await drive(incident, events - 5, to_incident, "incident")
        before = await incident.fetch_history()
        await incident.execute_update(
            IncidentWorkflow.add_note, AddNote(actor="alice", text="rollback of 1.4.0 started")
        )
        after = await incident.fetch_history()
        update_bytes = after.to_json().__len__() - before.to_json().__len__()
    queue = TASK_QUEUE + "-baseline"
    async with Worker(client, task_queue=queue, workflows=[Counter]):
        counter = await client.start_workflow(Counter.run, id="bench-counter", task_queue=queue)

        async def to_counter(i: int) -> None:
            await counter.signal(Counter.tick, f"flap {i}")

        await drive(counter, len(after.events), to_counter, "trivial")
        trivial = await counter.fetch_history()
    return after, trivial, update_bytes


async def time_replays(
    ours: WorkflowHistory, trivial: WorkflowHistory, repeat: int
) -> tuple[list[float], list[float]]:
    """Replay each history ``repeat`` times, alternately; seconds per replay."""
    converter = data_converter(Settings())
    fireline = Replayer(workflows=list(WORKFLOWS), data_converter=converter)
    bare = Replayer(workflows=[Counter], data_converter=converter)
    a: list[float] = []
    b: list[float] = []
    for i in range(repeat):
        for replayer, history, out in ((fireline, ours, a), (bare, trivial, b)):
            t = time.perf_counter()
            result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
            out.append(time.perf_counter() - t)
            if result.replay_failure is not None:
                raise RuntimeError(
                    f"{history.workflow_id} failed to replay: {result.replay_failure}"
                )
        progress(f"replay {i + 1}/{repeat}: fireline {a[-1]:.2f} s, trivial {b[-1]:.2f} s")
    return a, b


async def main(args: argparse.Namespace) -> None:
    """Build (or load) both histories, replay them, print the table."""
    update_bytes = -1
    if args.load:
        ours = load_history(args.load / "incident.json")
        trivial = load_history(args.load / "trivial.json")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            server = DevServer(
                state_dir=Path(tmp),
                port=free_port(),
                ui_port=None,
                dynamic_config=NO_CONTINUE_AS_NEW,
            )
            await server.start()
            try:
                client = await connect(Settings(temporal_address=server.address))
                ours, trivial, update_bytes = await build(client, args.events)
            finally:
                await server.stop()
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            (args.save / "incident.json").write_text(ours.to_json())
            (args.save / "trivial.json").write_text(trivial.to_json())
    a, b = await time_replays(ours, trivial, args.repeat)
    ma, mb = statistics.median(a), statistics.median(b)
    na, nb = len(ours.events), len(trivial.events)
    print(f"{machine()}; median of {args.repeat} replays each, sandboxed, one at a time")
    print_table(
        [
            ["history", "events", "JSON size", "replay", "per event", "ratio (per event)"],
            [
                "fireline IncidentWorkflow (flapping alert)",
                f"{na}",
                f"{len(ours.to_json()) / 1e6:.1f} MB",
                f"{ma:.2f} s",
                f"{ma / na * 1e6:.0f} µs",
                ratio(ma / na, mb / nb),
            ],
            [
                "trivial counter (SDK baseline)",
                f"{nb}",
                f"{len(trivial.to_json()) / 1e6:.1f} MB",
                f"{mb:.2f} s",
                f"{mb / nb * 1e6:.0f} µs",
                "1.00x",
            ],
        ]
    )
    if update_bytes >= 0:
        entries = sum(
            1 for e in ours.events if e.HasField("workflow_execution_signaled_event_attributes")
        )
        print(
            f"one add_note Update after ~{entries} timeline entries wrote "
            f"{update_bytes / 1024:.0f} KiB of history "
            "(1,555 KiB before Update results were cut to the newest 50 entries)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=10_000, help="history length to build")
    parser.add_argument("--repeat", type=int, default=5, help="replays of each history")
    parser.add_argument("--save", type=Path, help="write both histories here as JSON")
    parser.add_argument("--load", type=Path, help="replay histories saved with --save")
    run_main(main(parser.parse_args()))

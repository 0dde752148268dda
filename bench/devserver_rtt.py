"""Per-round-trip cost of the embedded dev server, with its default flags and variations.

fireline runs ``temporal server start-dev --db-filename ...`` (worker/devserver.py). About
50 ms per workflow task has been seen on loopback, far above what SQLite and loopback need.
This starts a fresh server per variant (same binary, same machine, same worker code in this
process) and measures, one call at a time:

- query: client → server → worker → back, nothing persisted: the floor of any round trip;
- update: one workflow task, persisted (accepted + completed events);
- empty workflow: start → one workflow task → result;
- activity step: one activity then the next workflow task (two dispatches), from a chain of
  sequential no-op activities.

Every figure is beside the same figure for fireline's default flags, measured in the same
command; the ratio says what a setting buys.

Usage: python -m bench.devserver_rtt [--trials 40] [--steps 20] [--rounds 1] [--only NAME]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from bench.common import Counter, Empty, Steps, machine, pct, print_table, progress, ratio, run_main
from tests.support import free_port
from worker.devserver import SQLITE_PRAGMAS, DevServer

TASK_QUEUE = "bench-rtt"


@dataclass(frozen=True)
class Variant:
    """One way to start the dev server."""

    name: str
    # False: no --db-filename, SQLite in memory (state lost when the server exits).
    file_db: bool = True
    pragmas: tuple[str, ...] = ()
    dynamic: dict[str, str] = field(default_factory=dict)


VARIANTS = [
    # worker/devserver.py's pragmas (WAL since the fourth session), as its command line has.
    Variant("default", pragmas=SQLITE_PRAGMAS),
    Variant("rollback-journal", pragmas=()),  # the default before WAL
    Variant("in-memory", file_db=False),
    Variant("wal+sync-normal", pragmas=("journal_mode=wal", "synchronous=normal")),
    Variant("sync-off", pragmas=("synchronous=off",)),
    Variant("no-SA-refresh", dynamic={"system.forceSearchAttributesCacheRefreshOnRead": "false"}),
    Variant(
        "wal+sync-normal+no-SA-refresh",
        pragmas=("journal_mode=wal", "synchronous=normal"),
        dynamic={"system.forceSearchAttributesCacheRefreshOnRead": "false"},
    ),
]


class VariantServer(DevServer):
    """fireline's DevServer, with the variant's flags changed on its command line."""

    def __init__(self, variant: Variant, state_dir: Path) -> None:
        super().__init__(
            state_dir=state_dir, port=free_port(), ui_port=None, dynamic_config=variant.dynamic
        )
        self.variant = variant

    def command(self) -> list[str]:
        """DevServer.command() minus --db-filename (in memory) plus --sqlite-pragma flags."""
        cmd = super().command()
        # The variant says which pragmas apply, fireline's own included.
        while "--sqlite-pragma" in cmd:
            i = cmd.index("--sqlite-pragma")
            del cmd[i : i + 2]
        if not self.variant.file_db:
            i = cmd.index("--db-filename")
            del cmd[i : i + 2]
        for pragma in self.variant.pragmas:
            cmd += ["--sqlite-pragma", pragma]
        return cmd


@activity.defn(name="bench.noop")
async def noop() -> None:
    """Does nothing: the dispatch is what is measured."""


@dataclass
class Figures:
    """Per-call latencies (seconds) of one variant."""

    query: list[float]
    update: list[float]
    empty: list[float]
    step: list[float]


async def measure(client: Client, trials: int, steps: int, tag: str) -> Figures:
    """All four figures, one call at a time, against a worker in this process."""
    async with Worker(
        client,
        task_queue=TASK_QUEUE,
        workflows=[Counter, Empty, Steps],
        activities=[noop],
    ):
        # Warm up: first task, sticky queue, connections.
        await client.execute_workflow(Empty.run, id=f"{tag}-warm", task_queue=TASK_QUEUE)
        counter = await client.start_workflow(Counter.run, id=f"{tag}-c", task_queue=TASK_QUEUE)
        await counter.execute_update(Counter.bump, "warm")
        query: list[float] = []
        update: list[float] = []
        for i in range(trials):
            t = time.perf_counter()
            await counter.query("__stack_trace")
            query.append(time.perf_counter() - t)
            t = time.perf_counter()
            await counter.execute_update(Counter.bump, f"u{i}")
            update.append(time.perf_counter() - t)
        await counter.signal(Counter.finish)
        empty: list[float] = []
        for i in range(trials):
            t = time.perf_counter()
            await client.execute_workflow(Empty.run, id=f"{tag}-e{i}", task_queue=TASK_QUEUE)
            empty.append(time.perf_counter() - t)
        step: list[float] = []
        for i in range(max(1, trials // 8)):
            t = time.perf_counter()
            await client.execute_workflow(Steps.run, steps, id=f"{tag}-s{i}", task_queue=TASK_QUEUE)
            step.append((time.perf_counter() - t) / steps)
    return Figures(query, update, empty, step)


async def run_variant(variant: Variant, trials: int, steps: int, tag: str) -> Figures:
    """A fresh server with the variant's flags, measured, then stopped."""
    with tempfile.TemporaryDirectory() as tmp:
        server = VariantServer(variant, Path(tmp))
        await server.start()
        try:
            client = await Client.connect(server.address)
            return await measure(client, trials, steps, tag)
        finally:
            await server.stop()


def _ms(values: list[float]) -> float:
    return pct(values, 50) * 1000


async def main(args: argparse.Namespace) -> None:
    """Every variant (interleaved over rounds), then one table against the default."""
    chosen = [v for v in VARIANTS if not args.only or v.name in ("default", *args.only)]
    results: dict[str, Figures] = {}
    for r in range(args.rounds):
        for v in chosen:
            progress(f"round {r + 1}/{args.rounds}: {v.name}")
            f = await run_variant(v, args.trials, args.steps, f"r{r}-{v.name}")
            if v.name in results:
                old = results[v.name]
                f = Figures(
                    old.query + f.query,
                    old.update + f.update,
                    old.empty + f.empty,
                    old.step + f.step,
                )
            results[v.name] = f
            progress(
                f"  {v.name}: update p50 {_ms(f.update):.1f} ms, "
                f"activity step p50 {_ms(f.step):.1f} ms"
            )
    base = results["default"]
    print(f"{machine()}; {args.trials} calls each, {args.rounds} round(s), p50 ms")
    rows = [
        [
            "variant",
            "query",
            "update",
            "vs default",
            "empty wf",
            "vs default",
            "activity step",
            "vs default",
        ]
    ]
    for v in chosen:
        f = results[v.name]
        rows.append(
            [
                v.name,
                f"{_ms(f.query):.1f}",
                f"{_ms(f.update):.1f}",
                ratio(_ms(f.update), _ms(base.update)),
                f"{_ms(f.empty):.1f}",
                ratio(_ms(f.empty), _ms(base.empty)),
                f"{_ms(f.step):.1f}",
                ratio(_ms(f.step), _ms(base.step)),
            ]
        )
    print_table(rows)
    print("p99 update / empty wf / activity step (ms):")
    for v in chosen:
        f = results[v.name]
        print(
            f"  {v.name}: {pct(f.update, 99) * 1000:.1f} / {pct(f.empty, 99) * 1000:.1f} / "
            f"{pct(f.step, 99) * 1000:.1f}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="variants: " + ", ".join(v.name for v in VARIANTS),
    )
    parser.add_argument("--trials", type=int, default=40, help="calls per figure per variant")
    parser.add_argument("--steps", type=int, default=20, help="activities per chain")
    parser.add_argument("--rounds", type=int, default=1, help="repeat all variants, interleaved")
    parser.add_argument("--only", nargs="*", help="variant names (default is always included)")
    run_main(main(parser.parse_args()))

"""Helpers every benchmark shares: percentiles, tables, RSS, the machine line, a clean exit.

Also the bare-temporalio baseline workflows that must run *sandboxed*, as the SDK's defaults
do: the sandbox re-imports a workflow's module for every run, so they live here, in a module
whose top-level imports are only the standard library and temporalio (both passed through).
Keep it that way: a heavy import at the top of this file would be paid by every baseline
workflow run and would make the baselines look slower than the SDK is.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
from collections.abc import Coroutine, Sequence
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0 to 100) of values, nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def ratio(ours: float, base: float) -> str:
    """``ours / base`` as ``1.23x``; ``-`` when the baseline is zero or missing."""
    if not base or base != base:  # zero or NaN
        return "-"
    return f"{ours / base:.2f}x"


def print_table(rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns; the first row is the header."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip())


def rss_bytes() -> int:
    """This process's resident set size, from /proc (psutil is not a dependency)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line in /proc/self/status (not Linux?)")


def machine() -> str:
    """The line RESULTS.md needs: architecture, cores, memory, Python, temporalio."""
    from importlib.metadata import version

    mem = ""
    try:
        with open("/proc/meminfo") as info:
            kib = int(info.readline().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{platform.machine()}, {os.cpu_count()} cores{mem}, Python "
        f"{platform.python_version()}, temporalio {version('temporalio')}"
    )


def progress(text: str) -> None:
    """One progress line on stderr, so the table on stdout stays clean."""
    print(f"[{datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)


def run_main(main: Coroutine[Any, Any, None]) -> None:
    """Run the benchmark, then leave with ``os._exit``.

    A process that ran a Worker can abort at interpreter exit (sdk-python #300, see
    TEMPORAL_NOTES.md): flushing and ``os._exit`` avoid a spurious failing ``make bench``.
    """
    status = 0
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        status = 130
    except BaseException as exc:  # report any failure, then still exit without finalising
        import traceback

        traceback.print_exception(exc)
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


# --- bare-temporalio baselines (sandboxed, like any SDK user's workflow) -------------------


@workflow.defn(name="BenchSleepThenPage")
class SleepThenPage:
    """Sleep until an absolute due time, then call one activity: a bare escalation level."""

    @workflow.run
    async def run(self, key: str, due_iso: str) -> None:
        """One durable timer, one activity."""
        remaining = datetime.fromisoformat(due_iso) - workflow.now()
        if remaining > timedelta(0):
            await workflow.sleep(remaining)
        await workflow.execute_activity(
            "bench.page", key, start_to_close_timeout=timedelta(seconds=30)
        )


@workflow.defn(name="BenchCounter")
class Counter:
    """Counts updates and signals until told to stop: a trivial workflow to replay."""

    def __init__(self) -> None:
        self.count = 0
        self.done = False

    @workflow.run
    async def run(self) -> int:
        """Live until ``finish``."""
        await workflow.wait_condition(lambda: self.done)
        return self.count

    @workflow.update
    def bump(self, text: str) -> int:
        """One update: a counter, nothing else."""
        self.count += 1
        return self.count

    @workflow.signal
    def tick(self, text: str) -> None:
        """One signal: a counter, nothing else."""
        self.count += 1

    @workflow.signal
    def finish(self) -> None:
        """End the run."""
        self.done = True


@workflow.defn(name="BenchSteps")
class Steps:
    """``n`` activities one after another: 2 dispatches (activity, workflow task) each."""

    @workflow.run
    async def run(self, n: int) -> None:
        """Sequential no-op activities."""
        for _ in range(n):
            await workflow.execute_activity(
                "bench.noop", start_to_close_timeout=timedelta(seconds=30)
            )


@workflow.defn(name="BenchEmpty")
class Empty:
    """Start → complete: one workflow task."""

    @workflow.run
    async def run(self) -> None:
        """Nothing."""

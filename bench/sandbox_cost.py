"""What one workflow run's sandbox costs the worker: CPU and memory to create it, no server.

Every workflow run the worker starts (a new incident, its escalation, or a cached run that
was evicted and is replayed) gets a new sandbox, which re-imports the workflow's module and
re-applies ``@workflow.defn``. The SDK does this on the worker's event loop, before the
run's first activation, so while it runs no other workflow task makes progress.

Compared, in one process, alternately (``--rounds``), per workflow class:
- **SDK default**: ``SandboxedWorkflowRunner()`` as an SDK user gets it;
- **fireline**: ``worker.runner.workflow_runner()`` with ``share_workflow_code()`` installed
  (pure helpers passed through; workflow modules compiled once per process).

CPU is ``time.process_time`` per created instance (median of the rounds). Memory is what
``tracemalloc`` sees still allocated per live instance, with ``--keep`` instances alive. The
baseline workflow (``bench.common.SleepThenPage``) shows a bare workflow's sandbox.

Usage: python -m bench.sandbox_cost [--count 40] [--rounds 3] [--keep 40]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from typing import Any

import temporalio.converter
import temporalio.workflow
from temporalio.api.common.v1.message_pb2 import Payloads
from temporalio.api.failure.v1.message_pb2 import Failure
from temporalio.worker import WorkflowRunner
from temporalio.worker._workflow_instance import WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _fake_info

from bench.common import SleepThenPage, machine, print_table, ratio, run_main
from worker.runner import SharedWorkflowCode, share_workflow_code, workflow_runner
from workflows.escalation_workflow import EscalationWorkflow
from workflows.incident import IncidentWorkflow

CLASSES: tuple[type, ...] = (IncidentWorkflow, EscalationWorkflow, SleepThenPage)


def details(cls: type) -> WorkflowInstanceDetails:
    """What the worker hands a runner for a new run (the SDK's own validation info)."""
    default = temporalio.converter.DataConverter.default
    return WorkflowInstanceDetails(
        payload_converter_factory=default._new_payload_converter,
        failure_converter_class=default.failure_converter_class,
        interceptor_classes=[],
        defn=temporalio.workflow._Definition.must_from_class(cls),
        info=_fake_info,
        randomness_seed=-1,
        extern_functions={},
        disable_eager_activity_execution=False,
        worker_level_failure_exception_types=[],
        patch_activation_callback=None,
        last_completion_result=Payloads(),
        last_failure=Failure(),
    )


class Variant:
    """A runner, and whether the compile-once loader is installed while it runs."""

    def __init__(self, name: str, runner: WorkflowRunner, shared: SharedWorkflowCode | None):
        self.name, self.runner, self.shared = name, runner, shared

    def __enter__(self) -> Variant:
        if self.shared is not None and self.shared not in sys.meta_path:
            sys.meta_path.insert(0, self.shared)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.shared is not None and self.shared in sys.meta_path:
            sys.meta_path.remove(self.shared)


def cpu_ms(variant: Variant, cls: type, count: int) -> float:
    """CPU per created instance, in ms (instances dropped as they are made)."""
    det = details(cls)
    with variant:
        variant.runner.create_instance(det)  # warm: first imports, caches
        gc.collect()
        started = time.process_time()
        for _ in range(count):
            variant.runner.create_instance(det)
        return (time.process_time() - started) * 1000 / count


def kib_each(variant: Variant, cls: type, keep: int) -> float:
    """Memory still allocated per live instance, in KiB (tracemalloc)."""
    det = details(cls)
    with variant:
        variant.runner.create_instance(det)
        gc.collect()
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        alive = [variant.runner.create_instance(det) for _ in range(keep)]
        gc.collect()
        after = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del alive
    return (after - before) / 1024 / keep


async def main(args: argparse.Namespace) -> None:
    """Both variants, alternately, then the table."""
    shared = share_workflow_code()
    sys.meta_path.remove(shared)  # installed only while the fireline variant runs
    variants = [
        Variant("SDK default", SandboxedWorkflowRunner(), None),
        Variant("fireline", workflow_runner(), shared),
    ]
    cpu: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for cls in CLASSES:
            for v in variants:
                cpu.setdefault((cls.__name__, v.name), []).append(cpu_ms(v, cls, args.count))
    mem = {(c.__name__, v.name): kib_each(v, c, args.keep) for c in CLASSES for v in variants}
    print(f"{machine()}; {args.count} instances x {args.rounds} rounds; {args.keep} kept alive")
    rows: list[list[str]] = [
        ["workflow", "CPU default", "CPU fireline", "ratio", "KiB default", "KiB fireline", "ratio"]
    ]
    for cls in CLASSES:
        name = cls.__name__
        base, ours = (statistics.median(cpu[(name, v.name)]) for v in variants)
        mb, mo = (mem[(name, v.name)] for v in variants)
        rows.append(
            [
                name,
                f"{base:.1f} ms",
                f"{ours:.1f} ms",
                ratio(ours, base),
                f"{mb:.0f}",
                f"{mo:.0f}",
                ratio(mo, mb),
            ]
        )
    print_table(rows)


def _args(argv: list[str] | None = None) -> Any:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=40, help="instances timed per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--keep", type=int, default=40, help="instances alive for memory")
    return parser.parse_args(argv)


if __name__ == "__main__":
    run_main(main(_args()))

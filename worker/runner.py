"""The fireline worker: every workflow and activity, on one task queue.

Every workflow run gets its own sandbox, which re-imports the run's workflow module. Two
things here keep that cheap without weakening it (measured in bench/RESULTS.md, "Open
incidents on one worker"):

- ``PURE_HELPERS`` are passed through instead of being re-imported per run;
- ``SharedWorkflowCode`` compiles each workflow module once per process; every sandbox
  still executes the module afresh (its own globals, classes and state), only the immutable
  code objects are shared.
"""

from __future__ import annotations

import concurrent.futures
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterable, Sequence
from types import CodeType, ModuleType
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.kubernetes.actions import KubernetesActions
from worker.attempts import AttemptStamp
from worker.config import FirelineConfig
from workflows.action_item import ActionItemWorkflow
from workflows.alert_group import AlertGroupWorkflow
from workflows.comms import CommsWorkflow
from workflows.escalation_workflow import EscalationWorkflow
from workflows.incident import IncidentWorkflow
from workflows.overrides import OverrideStoreWorkflow
from workflows.postmortem import PostmortemWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.sequence import IncidentSequenceWorkflow
from workflows.silences import SilenceStoreWorkflow
from workflows.status_page import StatusPageWorkflow

WORKFLOWS: Sequence[type] = (
    IncidentWorkflow,
    IncidentSequenceWorkflow,
    AlertGroupWorkflow,
    SilenceStoreWorkflow,
    EscalationWorkflow,
    OverrideStoreWorkflow,
    RunbookWorkflow,
    CommsWorkflow,
    StatusPageWorkflow,
    PostmortemWorkflow,
    ActionItemWorkflow,
)

# Helper modules that workflows import with ``from workflows import x``. That form loads the
# submodule through importlib's fromlist path, which bypasses
# ``imports_passed_through()``, so without this the sandbox re-imports them on every run.
# Only pure modules belong here: no clock, randomness, I/O or mutable module state
# (workflow modules themselves must stay sandboxed).
PURE_HELPERS: tuple[str, ...] = ("workflows.comms_policy", "workflows.search_attributes")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every fireline workflow runs in: the SDK's, plus ``PURE_HELPERS``."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PURE_HELPERS)
    )


class _SharedCodeLoader(importlib.machinery.SourceFileLoader):
    """A source loader that compiles a given source text once per process."""

    # path -> (source bytes, code): one entry per module, replaced when the file changes.
    _compiled: dict[str, tuple[bytes, CodeType]] = {}
    _lock = threading.Lock()

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        # Keyed on the source text itself, so an edited file is never served stale code.
        source = self.get_data(path)
        with self._lock:
            cached = self._compiled.get(path)
        if cached is not None and cached[0] == source:
            return cached[1]
        code = self.source_to_code(source, path)
        with self._lock:
            self._compiled[path] = (source, code)
        return code


class SharedWorkflowCode(importlib.abc.MetaPathFinder):
    """Finds the named modules as usual, but loads them with a compile-once loader.

    The sandbox re-imports a workflow's module for every run it starts (a new incident, or a
    cached run evicted and replayed). Without bytecode files (``PYTHONDONTWRITEBYTECODE=1``,
    as here and in the Dockerfile) each re-import compiled the source again: 23 ms for
    ``workflows/incident.py``, on the worker's event loop, and 128 KiB of fresh code objects
    held by every cached incident. Sharing the code objects is safe: they are immutable, and
    each sandbox still runs the module body into its own namespace.
    """

    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = frozenset(modules)

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.modules:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if type(loader) is importlib.machinery.SourceFileLoader:
                spec.loader = _SharedCodeLoader(loader.name, loader.path)
            return spec
        return None


def share_workflow_code(workflows: Iterable[type] = WORKFLOWS) -> SharedWorkflowCode:
    """Install (once per process) the compile-once loader for these workflows' modules."""
    modules: set[str] = set()
    for cls in workflows:
        parts = cls.__module__.split(".")
        # The parent packages are re-imported with the module.
        modules.update(".".join(parts[: i + 1]) for i in range(len(parts)))
    for finder in sys.meta_path:
        if isinstance(finder, SharedWorkflowCode):
            finder.modules = finder.modules | modules
            return finder
    finder = SharedWorkflowCode(modules)
    sys.meta_path.insert(0, finder)
    return finder


def build_worker(
    client: Client, task_queue: str, activities: Sequence[Any] = (), **options: Any
) -> Worker:
    """A worker for fireline's workflows and the given activities."""
    share_workflow_code()
    # Sized like the activity slots, so a full worker never waits for a thread.
    threads = int(options.get("max_concurrent_activities", 100))
    options.setdefault("workflow_runner", workflow_runner())
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=list(activities),
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=threads),
        interceptors=[AttemptStamp()],
        **options,
    )


def cluster_workers(client: Client, config: FirelineConfig, names: Sequence[str]) -> list[Worker]:
    """One worker per configured cluster, on its own task queue, with its credentials.

    In a deployment each cluster runs ``fireline worker --cluster NAME`` inside it; on one
    machine (``fireline up``) the main process runs them all. A cluster whose credentials
    cannot be loaded fails here, at start, not in the middle of a rollback.
    """
    workers = []
    for name in names:
        cluster = config.clusters[name]
        actions = KubernetesActions.for_cluster(name, cluster)
        actions.connect()
        workers.append(
            Worker(
                client,
                task_queue=cluster.queue(name),
                activities=actions.activities(),
                interceptors=[AttemptStamp()],
            )
        )
    return workers

"""The worker's sandbox set-up (worker.runner): compile-once workflow modules, pure helpers.

Both keep the sandbox's isolation: every run still gets its own module namespace, its own
workflow class; only immutable code objects and pure helper modules are shared.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

import workflows.comms_policy
import workflows.search_attributes
from bench.sandbox_cost import details
from worker.runner import (
    PURE_HELPERS,
    WORKFLOWS,
    SharedWorkflowCode,
    share_workflow_code,
    workflow_runner,
)
from workflows.incident import IncidentWorkflow

MODULE_V1 = "COUNTER = []\n\ndef add(x):\n    COUNTER.append(x)\n    return len(COUNTER)\n"
MODULE_V2 = "COUNTER = []\n\ndef add(x):\n    return -1\n"


@pytest.fixture
def fresh_package(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A throwaway package ``fl_sharedcode_pkg`` with one module, importable from tmp_path."""
    package = tmp_path / "fl_sharedcode_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    module = package / "mod.py"
    module.write_text(MODULE_V1)
    sys.path.insert(0, str(tmp_path))
    try:
        yield "fl_sharedcode_pkg.mod", module
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("fl_sharedcode_pkg.mod", "fl_sharedcode_pkg"):
            sys.modules.pop(name, None)


def load_fresh(finder: SharedWorkflowCode, name: str) -> ModuleType:
    """Import ``name`` into a new module object, as the sandbox does for every run."""
    parent = sys.modules.get(name.rpartition(".")[0])
    path = list(parent.__path__) if parent else None
    spec = finder.find_spec(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_shared_code_compiles_once_but_keeps_each_run_s_state(
    fresh_package: tuple[str, Path],
) -> None:
    name, _ = fresh_package
    importlib.import_module("fl_sharedcode_pkg")
    finder = SharedWorkflowCode([name])
    first, second = load_fresh(finder, name), load_fresh(finder, name)
    assert first is not second
    assert first.add.__code__ is second.add.__code__  # compiled once
    # ... but each run has its own module state, as in a separate sandbox.
    assert first.add("a") == 1
    assert first.add("b") == 2
    assert second.add("c") == 1


def test_shared_code_follows_an_edited_source(fresh_package: tuple[str, Path]) -> None:
    name, path = fresh_package
    importlib.import_module("fl_sharedcode_pkg")
    finder = SharedWorkflowCode([name])
    assert load_fresh(finder, name).add("x") == 1
    path.write_text(MODULE_V2)
    assert load_fresh(finder, name).add("x") == -1


def test_other_modules_are_left_to_the_usual_finders() -> None:
    assert SharedWorkflowCode(["workflows.incident"]).find_spec("json", None) is None


def test_share_workflow_code_installs_one_finder_for_every_workflow_module() -> None:
    finder = share_workflow_code()
    assert share_workflow_code() is finder
    assert sum(isinstance(f, SharedWorkflowCode) for f in sys.meta_path) == 1
    for cls in WORKFLOWS:
        assert cls.__module__ in finder.modules
    assert "workflows" in finder.modules  # the parent package is re-imported too


def _sandboxed_globals(runner: SandboxedWorkflowRunner) -> dict[str, Any]:
    """The module globals of IncidentWorkflow as one new run's sandbox imported it."""

    async def create() -> Any:
        return runner.create_instance(details(IncidentWorkflow))

    instance = asyncio.run(create())
    cls = instance.globals_and_locals["__temporal_workflow_class"]
    assert cls is not IncidentWorkflow  # the workflow module itself stays sandboxed
    return dict(cls.run.__globals__)


def test_pure_helpers_are_passed_through_and_the_workflow_module_is_not() -> None:
    assert set(PURE_HELPERS) == {"workflows.comms_policy", "workflows.search_attributes"}
    share_workflow_code()
    ours = _sandboxed_globals(workflow_runner())
    assert ours["comms_policy"] is workflows.comms_policy
    assert ours["sa"] is workflows.search_attributes
    # The SDK default re-imports them for every run (``from workflows import x``).
    sdk = _sandboxed_globals(SandboxedWorkflowRunner())
    assert sdk["comms_policy"] is not workflows.comms_policy
    # Two runs of ours: separate classes, shared code.
    again = _sandboxed_globals(workflow_runner())
    assert again["IncidentWorkflow"] is not ours["IncidentWorkflow"]
    assert again["IncidentWorkflow"].run.__code__ is ours["IncidentWorkflow"].run.__code__

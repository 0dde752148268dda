"""Replay exported workflow histories against the workflow code in this checkout.

A history that no longer replays means a code change would break incidents in flight:
guard the change with ``workflow.patched()``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from worker.runner import WORKFLOWS
from worker.settings import Settings
from worker.temporal_client import data_converter


@dataclass
class ReplayResult:
    """One history's replay."""

    path: str
    workflow_type: str
    events: int
    ok: bool
    outcome: str


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; directories as their ``*.json`` files, sorted."""
    out: list[Path] = []
    for path in paths:
        out += sorted(path.glob("*.json")) if path.is_dir() else [path]
    return out


def load_history(path: Path) -> WorkflowHistory:
    """A history exported by ``fetch_history().to_json()`` or ``temporal workflow show``."""
    text = path.read_text()
    doc = json.loads(text)
    events = doc.get("events", [])
    workflow_id = path.stem
    if events:
        attrs = events[0].get("workflowExecutionStartedEventAttributes", {})
        workflow_id = attrs.get("workflowId", workflow_id) or workflow_id
    return WorkflowHistory.from_json(workflow_id, text)


def _workflow_type(history: WorkflowHistory) -> str:
    if not history.events:
        return "?"
    attrs = history.events[0].workflow_execution_started_event_attributes
    return attrs.workflow_type.name or "?"


async def replay_files(
    paths: list[Path], converter: DataConverter | None = None
) -> list[ReplayResult]:
    """Replay every history; a broken file is a failed result, not an exception.

    The converter defaults to the one the settings describe, so histories written with
    encryption on decrypt with the configured keys (``EncryptionKeyError`` if they are wrong).
    """
    if converter is None:
        converter = data_converter(Settings())
    replayer = Replayer(workflows=list(WORKFLOWS), data_converter=converter)
    results: list[ReplayResult] = []
    for path in expand(paths):
        try:
            history = load_history(path)
        except (OSError, ValueError) as exc:
            results.append(ReplayResult(str(path), "?", 0, False, f"unreadable: {exc}"))
            continue
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        failure = result.replay_failure
        results.append(
            ReplayResult(
                str(path),
                _workflow_type(history),
                len(history.events),
                failure is None,
                "ok" if failure is None else f"FAILED: {failure}",
            )
        )
    return results

"""The fireline worker: every workflow and activity, on one task queue."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from workflows.alert_group import AlertGroupWorkflow
from workflows.escalation_workflow import EscalationWorkflow
from workflows.incident import IncidentWorkflow
from workflows.overrides import OverrideStoreWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.sequence import IncidentSequenceWorkflow
from workflows.silences import SilenceStoreWorkflow

WORKFLOWS: Sequence[type] = (
    IncidentWorkflow,
    IncidentSequenceWorkflow,
    AlertGroupWorkflow,
    SilenceStoreWorkflow,
    EscalationWorkflow,
    OverrideStoreWorkflow,
    RunbookWorkflow,
)


def build_worker(
    client: Client, task_queue: str, activities: Sequence[Any] = (), **options: Any
) -> Worker:
    """A worker for fireline's workflows and the given activities."""
    return Worker(
        client,
        task_queue=task_queue,
        workflows=list(WORKFLOWS),
        activities=list(activities),
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
        **options,
    )

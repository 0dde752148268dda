"""The fireline worker: every workflow and activity, on one task queue."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

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


def build_worker(
    client: Client, task_queue: str, activities: Sequence[Any] = (), **options: Any
) -> Worker:
    """A worker for fireline's workflows and the given activities."""
    # Sized like the activity slots, so a full worker never waits for a thread.
    threads = int(options.get("max_concurrent_activities", 100))
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

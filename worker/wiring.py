"""The one place that decides which activities (and, later, which vendors) a worker runs."""

from __future__ import annotations

from typing import Any

from temporalio.client import Client

from worker.config import FirelineConfig
from worker.incident_activities import IncidentActivities
from worker.incident_service import IncidentService


def activities(client: Client, config: FirelineConfig, task_queue: str) -> list[Any]:
    """Every activity the fireline worker registers, bound to their clients."""
    incidents = IncidentActivities(IncidentService(client, config, task_queue))
    return [incidents.correlate, incidents.declare_from_alerts, incidents.attach_alerts]

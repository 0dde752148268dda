"""Status page publishing as one activity, ``status_page.publish``, for either provider.

``worker/wiring.py`` picks the provider from config: :class:`BuiltinStatusPage` (fireline's
own page, the ``StatusPageWorkflow``) or
:class:`activities.providers.statuspage.StatuspagePublisher` (Atlassian Statuspage).
Both dedupe on the publication's ``update_id``, so an activity retry never shows an update
twice.

The built-in provider talks to the workflow by name (type ``StatusPageWorkflow``, Update
``publish``) rather than importing it: activities never import workflow code.
"""

from __future__ import annotations

from typing import Any, Protocol

from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError

from workflows.contracts import (
    STATUS_PAGE_WORKFLOW_ID,
    STATUS_PAGE_WORKFLOW_TYPE,
    StatusPageInput,
    StatusPublication,
    StatusPublished,
)

PUBLISH_UPDATE = "publish"


class StatusPageProvider(Protocol):
    """One status page vendor."""

    async def publish(self, pub: StatusPublication) -> StatusPublished:
        """Publish ``pub`` idempotently (by ``update_id``), or raise an ApplicationError."""
        ...


class BuiltinStatusPage:
    """fireline's own page: the ``publish`` Update on the StatusPageWorkflow.

    The workflow is started by the first publication (update-with-start), with the page
    as configured at that moment.
    """

    def __init__(
        self,
        client: Client,
        *,
        task_queue: str,
        start_input: StatusPageInput,
        workflow_id: str = STATUS_PAGE_WORKFLOW_ID,
    ) -> None:
        """``workflow_id`` is fixed in production; tests sharing a server pass their own."""
        self._client = client
        self._task_queue = task_queue
        self._start_input = start_input
        self.workflow_id = workflow_id

    async def publish(self, pub: StatusPublication) -> StatusPublished:
        """Run the ``publish`` Update, starting the page workflow if it does not run yet."""
        start: WithStartWorkflowOperation[Any, None] = WithStartWorkflowOperation(
            STATUS_PAGE_WORKFLOW_TYPE,
            self._start_input,
            id=self.workflow_id,
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        try:
            result: StatusPublished = await self._client.execute_update_with_start_workflow(
                PUBLISH_UPDATE,
                pub,
                start_workflow_operation=start,
                # Temporal dedupes Update ids within a run; the workflow dedupes across runs.
                # The incident is part of it: update ids need only be unique per incident.
                id=f"publish-{pub.incident_id}-{pub.update_id}",
                result_type=StatusPublished,
            )
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            if isinstance(cause, ApplicationError):
                # The validator's refusal (too long, unknown component): retrying cannot help.
                raise ApplicationError(
                    f"status page refused the update: {cause.message}",
                    type=cause.type or "InvalidPublication",
                    non_retryable=True,
                ) from None
            raise
        return result


class StatusPageActivities:
    """The status page activity; the constructor receives the configured provider."""

    def __init__(self, provider: StatusPageProvider) -> None:
        """Keep the provider (built-in or Atlassian Statuspage)."""
        self._provider = provider

    @activity.defn(name="status_page.publish")
    async def publish(self, pub: StatusPublication) -> StatusPublished:
        """Publish one customer-facing update to the configured status page."""
        activity.logger.info(
            "publishing %s update %s (%s)", pub.incident_id, pub.update_id, pub.status.value
        )
        return await self._provider.publish(pub)

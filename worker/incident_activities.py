"""Activities that act on incidents from inside workflows (the alert groups).

They live in ``worker/`` because they drive other workflows through the Temporal client,
as the API does, and share its ``IncidentService``. Each is idempotent: correlation only
reads, declaration is keyed by the group's request id, and attaching alerts is a signal
the incident deduplicates.

Exceptions: a ``FirelineError`` that retrying cannot fix (bad request, not found, refused)
becomes a non-retryable ``ApplicationError`` of type ``IncidentRequestRefused``; everything
else is retried by Temporal.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from runbooks.substitution import AlertFacts
from worker.errors import FirelineError, Unavailable
from worker.incident_service import DeclareRequest, IncidentService, workflow_id
from worker.runbook_library import matching
from worker.runbook_service import RunbookService
from workflows.contracts import (
    AttachAlerts,
    CorrelateRequest,
    Correlation,
    DeclaredIncident,
    DeclareFromAlerts,
    IncidentStatus,
    StartRunbook,
)
from workflows.incident import IncidentWorkflow
from workflows.lifecycle import is_open

OPEN = [s for s in IncidentStatus if is_open(s)]


def _activity_error(exc: FirelineError) -> ApplicationError:
    # Unavailable (no worker answered, contention) is retried by the activity's policy;
    # anything else is the request's own fault and would fail the same way again.
    if isinstance(exc, Unavailable):
        return ApplicationError(exc.reason, type="IncidentServiceUnavailable")
    return ApplicationError(exc.reason, type="IncidentRequestRefused", non_retryable=True)


class IncidentActivities:
    """Incident operations for workflows; constructed with the worker's IncidentService."""

    def __init__(self, service: IncidentService, runbooks: RunbookService | None = None) -> None:
        self.service = service
        # Runbooks whose match holds for a declaring alert start with the incident.
        self.runbooks = runbooks

    @activity.defn(name="incidents.correlate")
    async def correlate(self, req: CorrelateRequest) -> Correlation:
        """The newest open incident of the nearest listed service, declared within the window."""
        since = datetime.now(UTC) - req.window
        for service in req.services:
            try:
                rows = await self.service.list(statuses=OPEN, service=service, limit=20)
            except FirelineError as exc:
                raise _activity_error(exc) from None
            recent = [r for r in rows if r.declared_at is not None and r.declared_at >= since]
            if recent:
                return Correlation(
                    incident_id=recent[0].id,
                    service=service,
                    reason=f"{recent[0].id} is open for {service}",
                )
        return Correlation()

    @activity.defn(name="incidents.declare_from_alerts")
    async def declare_from_alerts(self, req: DeclareFromAlerts) -> DeclaredIncident:
        """Declare an incident for a group of alerts; a retry returns the same incident."""
        request = DeclareRequest(
            title=req.title,
            service=req.service,
            impact=req.impact,
            summary=req.summary,
            labels=req.labels,
            escalation_policy=req.escalation_policy,
        )
        try:
            incident_id = await self.service.declare_id(
                request, request_id=req.request_id, runbooks=self._matching_runbooks(req.labels)
            )
        except FirelineError as exc:
            raise _activity_error(exc) from None
        return DeclaredIncident(incident_id=incident_id)

    def _matching_runbooks(self, labels: dict[str, str]) -> list[StartRunbook]:
        """The runbooks whose match holds for the declaring alert, parameters from its labels.

        The incident starts them as it opens (no Update from here, so no round trip inside
        the alert group's workflow task); one whose parameters are missing is put on its
        timeline as not started.
        """
        if self.runbooks is None:
            return []
        alert = AlertFacts(labels=labels, status="firing")
        starts = []
        for runbook in matching(self.runbooks.library, labels):
            params = {k: v for k, v in labels.items() if k in runbook.parameters}
            starts.append(self.runbooks.start_request(runbook, params, "fireline", alert=alert))
        return starts

    @activity.defn(name="incidents.attach_alerts")
    async def attach_alerts(self, req: AttachAlerts) -> bool:
        """Signal the incident (it ignores changes it already has); False if it is closed."""
        handle = self.service.client.get_workflow_handle(workflow_id(req.incident_id))
        try:
            await handle.signal(IncidentWorkflow.alerts_changed, req.changes)
        except RPCError as exc:
            if "already completed" in exc.message or "not found" in exc.message.lower():
                # A closed incident takes no more alerts; the group keeps them on record.
                activity.logger.info("%s is closed; its group will find another", req.incident_id)
                return False
            raise
        return True

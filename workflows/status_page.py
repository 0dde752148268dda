"""StatusPageWorkflow: the built-in public status page's durable state.

One long-lived workflow (id ``status-page``) holds what was published to customers: public
incidents with their updates, scheduled maintenance, and each component's status
transitions for the last 90 days (for uptime bars). It never sees the internal timeline;
only the ``publish`` Update writes to it, with text the publisher already redacted.

- ``publish`` (Update): add an update to a public incident, creating it on first use.
  Idempotent on ``update_id``: a retried publication returns the first answer.
- ``schedule_maintenance`` (Update): add or replace a maintenance window by id.
- ``snapshot`` (query): everything the page renders.

A component's status is the worst among the active (unresolved) incidents' latest statuses
for it, under maintenance inside a maintenance window, else operational. History is bounded
by continuing as new, carrying the state pruned to the retention period.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows.contracts import (
        MAX_BODY_CHARS,
        MAX_TITLE_CHARS,
        RETENTION_DAYS,
        STATUS_PAGE_WORKFLOW_ID,
        ComponentNow,
        ComponentStatus,
        Maintenance,
        PageComponent,
        PublicIncident,
        PublicStatus,
        PublishedUpdate,
        ScheduleMaintenance,
        StatusPageCarried,
        StatusPageInput,
        StatusPageSnapshot,
        StatusPublication,
        StatusPublished,
        StatusTransition,
    )
    from workflows.history import history_is_long
    from workflows.uptime import component_status, incident_statuses, prune_transitions

__all__ = ["STATUS_PAGE_WORKFLOW_ID", "StatusPageWorkflow"]

INVALID_PUBLICATION = "InvalidPublication"
INVALID_MAINTENANCE = "InvalidMaintenance"
RETENTION = timedelta(days=RETENTION_DAYS)


def _refuse(message: str, error_type: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


@workflow.defn
class StatusPageWorkflow:
    """The public status page: incidents, maintenance, component status history."""

    @workflow.init
    def __init__(self, inp: StatusPageInput) -> None:
        # Built here, not in run(): after continue-as-new the first Updates arrive in the
        # same activation and must see the carried state.
        self._input = inp
        carried = inp.carried or StatusPageCarried()
        self._generation = carried.generation
        self._tracked_since = carried.tracked_since or workflow.now()
        self._incidents: dict[str, PublicIncident] = {i.incident_id: i for i in carried.incidents}
        self._transitions: list[StatusTransition] = list(carried.transitions)
        # Config maintenance first, so a runtime Update with the same id replaces it.
        self._maintenance: dict[str, Maintenance] = {m.id: m for m in inp.maintenance}
        self._maintenance.update({m.id: m for m in carried.maintenance})
        self._components: dict[str, PageComponent] = {c.id: c for c in inp.components}

    @workflow.run
    async def run(self, inp: StatusPageInput) -> None:
        """Serve Updates and queries until history is long, then continue as new."""
        await workflow.wait_condition(self._history_is_long)
        await workflow.wait_condition(workflow.all_handlers_finished)
        carried = self._carried(workflow.now())
        workflow.logger.info("continuing as new (generation %d)", carried.generation)
        workflow.continue_as_new(self._input.model_copy(update={"carried": carried}))

    def _history_is_long(self) -> bool:
        return history_is_long(self._input.max_history_events)

    def _carried(self, now: datetime) -> StatusPageCarried:
        cutoff = now - RETENTION
        return StatusPageCarried(
            incidents=[
                i
                for i in self._incidents.values()
                if i.resolved_at is None or i.resolved_at >= cutoff
            ],
            transitions=prune_transitions(self._transitions, cutoff),
            # Config maintenance comes back with the input; carry only what Updates added
            # or changed, and only while it can still show.
            maintenance=[
                m
                for m in self._maintenance.values()
                if m.ends_at >= cutoff and m not in self._input.maintenance
            ],
            tracked_since=self._tracked_since,
            generation=self._generation + 1,
        )

    # --- queries ---------------------------------------------------------------------------

    @workflow.query
    def snapshot(self) -> StatusPageSnapshot:
        """Everything the page renders, as of the last workflow task's clock."""
        now = workflow.now()
        cutoff = now - RETENTION
        driven = incident_statuses(self._incidents.values())
        maintenance = sorted(
            (m for m in self._maintenance.values() if m.ends_at >= cutoff),
            key=lambda m: (m.starts_at, m.id),
        )
        known = list(self._components.values()) or [
            PageComponent(id=c, name=c) for c in sorted(self._mentioned())
        ]
        components = [
            ComponentNow(
                id=c.id,
                name=c.name,
                description=c.description,
                group=c.group,
                status=component_status(c.id, driven, maintenance, now),
            )
            for c in known
        ]
        incidents = [
            i for i in self._incidents.values() if i.resolved_at is None or i.resolved_at >= cutoff
        ]
        # Unresolved first, then by the latest news.
        incidents.sort(key=lambda i: (i.resolved_at is None, i.updated_at), reverse=True)
        return StatusPageSnapshot(
            at=now,
            title=self._input.title,
            public_url=self._input.public_url,
            tracked_since=self._tracked_since,
            components=components,
            groups=self._input.groups,
            incidents=incidents,
            maintenance=maintenance,
            transitions=prune_transitions(self._transitions, cutoff),
        )

    def _mentioned(self) -> set[str]:
        found = {c for i in self._incidents.values() for c in i.components}
        return found | {c for m in self._maintenance.values() for c in m.components}

    # --- updates ---------------------------------------------------------------------------

    @workflow.update
    def publish(self, pub: StatusPublication) -> StatusPublished:
        """Add ``pub`` to its public incident (created on first use); idempotent."""
        existing = self._incidents.get(pub.incident_id)
        if existing is not None and any(u.update_id == pub.update_id for u in existing.updates):
            return self._published(existing)
        now = workflow.now()
        before = incident_statuses(self._incidents.values())
        update = PublishedUpdate(
            update_id=pub.update_id,
            at=pub.at,
            status=pub.status,
            impact=pub.impact,
            body=pub.body,
            components=dict(pub.components),
        )
        resolved = pub.status is PublicStatus.RESOLVED
        if existing is None:
            incident = PublicIncident(
                incident_id=pub.incident_id,
                title=pub.title,
                status=pub.status,
                impact=pub.impact,
                started_at=pub.at,
                updated_at=pub.at,
                resolved_at=pub.at if resolved else None,
                components=dict(pub.components),
                updates=[update],
            )
        else:
            incident = existing.model_copy(
                update={
                    "title": pub.title,
                    "status": pub.status,
                    "impact": pub.impact,
                    "updated_at": max(existing.updated_at, pub.at),
                    "resolved_at": (existing.resolved_at or pub.at) if resolved else None,
                    "components": {**existing.components, **pub.components},
                    "updates": [*existing.updates, update],
                }
            )
        self._incidents[pub.incident_id] = incident
        self._record_transitions(before, incident_statuses(self._incidents.values()), now)
        self._prune(now)
        return self._published(incident)

    @publish.validator
    def _validate_publish(self, pub: StatusPublication) -> None:
        existing = self._incidents.get(pub.incident_id)
        if existing is not None and any(u.update_id == pub.update_id for u in existing.updates):
            return  # a retry: answered from what was stored
        for name, value in (("incident_id", pub.incident_id), ("update_id", pub.update_id)):
            if not value.strip():
                raise _refuse(f"{name}: must not be empty", INVALID_PUBLICATION)
        if pub.at.tzinfo is None:
            raise _refuse("at: must carry a timezone", INVALID_PUBLICATION)
        if not pub.title.strip():
            raise _refuse("title: must not be empty", INVALID_PUBLICATION)
        if len(pub.title) > MAX_TITLE_CHARS:
            raise _refuse(
                f"title: {len(pub.title)} characters is over the limit of {MAX_TITLE_CHARS}",
                INVALID_PUBLICATION,
            )
        if not pub.body.strip():
            raise _refuse("body: must not be empty", INVALID_PUBLICATION)
        if len(pub.body) > MAX_BODY_CHARS:
            raise _refuse(
                f"body: {len(pub.body)} characters is over the limit of {MAX_BODY_CHARS}",
                INVALID_PUBLICATION,
            )
        self._check_components(pub.components, "components", INVALID_PUBLICATION)

    @workflow.update
    def schedule_maintenance(self, cmd: ScheduleMaintenance) -> Maintenance:
        """Add a maintenance window, or replace the one with the same id."""
        self._maintenance[cmd.maintenance.id] = cmd.maintenance
        return cmd.maintenance

    @schedule_maintenance.validator
    def _validate_maintenance(self, cmd: ScheduleMaintenance) -> None:
        m = cmd.maintenance
        if not m.id.strip():
            raise _refuse("maintenance.id: must not be empty", INVALID_MAINTENANCE)
        if not m.title.strip():
            raise _refuse("maintenance.title: must not be empty", INVALID_MAINTENANCE)
        if m.starts_at.tzinfo is None or m.ends_at.tzinfo is None:
            raise _refuse(
                "maintenance.starts_at/ends_at: must carry a timezone", INVALID_MAINTENANCE
            )
        if m.ends_at <= m.starts_at:
            raise _refuse("maintenance.ends_at: must be after starts_at", INVALID_MAINTENANCE)
        if m.ends_at <= workflow.now():
            raise _refuse(
                f"maintenance.ends_at: {m.ends_at.isoformat()} has already passed",
                INVALID_MAINTENANCE,
            )
        if not m.components:
            raise _refuse("maintenance.components: name at least one", INVALID_MAINTENANCE)
        self._check_components(
            dict.fromkeys(m.components, ComponentStatus.UNDER_MAINTENANCE),
            "maintenance.components",
            INVALID_MAINTENANCE,
        )

    # --- helpers ---------------------------------------------------------------------------

    def _check_components(
        self, components: dict[str, ComponentStatus], where: str, error_type: str
    ) -> None:
        if not self._components:
            return  # no configured components: the page lists what it is told about
        unknown = sorted(set(components) - set(self._components))
        if unknown:
            known = ", ".join(sorted(self._components))
            raise _refuse(f"{where}: unknown component '{unknown[0]}' (known: {known})", error_type)

    def _record_transitions(
        self,
        before: dict[str, ComponentStatus],
        after: dict[str, ComponentStatus],
        at: datetime,
    ) -> None:
        operational = ComponentStatus.OPERATIONAL
        for component in sorted(set(before) | set(after)):
            old, new = before.get(component, operational), after.get(component, operational)
            if old is not new:
                self._transitions.append(StatusTransition(component=component, at=at, status=new))

    def _prune(self, now: datetime) -> None:
        cutoff = now - RETENTION
        self._transitions = prune_transitions(self._transitions, cutoff)
        self._incidents = {
            k: i
            for k, i in self._incidents.items()
            if i.resolved_at is None or i.resolved_at >= cutoff
        }

    def _published(self, incident: PublicIncident) -> StatusPublished:
        base = self._input.public_url
        url = f"{base.rstrip('/')}#incident-{incident.incident_id}" if base else None
        return StatusPublished(provider="builtin", external_id=incident.incident_id, url=url)

"""Everything the workflows record in Temporal history.

Workflow inputs and outputs, Update and Signal arguments, query results, and the config
snapshot an incident runs with. The pure policy modules (``severity``, ``time_intervals``, ...)
define the config models they interpret; those are part of recorded inputs too, so a change
to any model reachable from here is a versioning event: add fields with defaults, never
rename or remove one, and keep ``tests/histories/`` replaying.

Carried by ``temporalio.contrib.pydantic.pydantic_data_converter``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from activities.contracts import ContactMethod
from runbooks.schema import Runbook
from runbooks.substitution import AlertFacts, IncidentFacts
from workflows.alerts import Alert, AlertStatus
from workflows.durations import Duration
from workflows.escalation import EscalationSnapshot
from workflows.oncall import Override
from workflows.routing import ResolvedRoute
from workflows.severity import ImpactFacts, Severity, SeverityPolicy
from workflows.time_intervals import TimeInterval

__all__ = [
    "Alert",
    "AlertStatus",
    "ImpactFacts",
    "ResolvedRoute",
    "Severity",
    "SeverityPolicy",
    "TimeInterval",
]


class IncidentStatus(StrEnum):
    """Lifecycle states; ``workflows.lifecycle`` holds the allowed transitions."""

    DECLARED = "declared"
    ACKNOWLEDGED = "acknowledged"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Role(StrEnum):
    """Incident roles; each is held by at most one user, each user holds at most one."""

    COMMANDER = "commander"
    COMMUNICATIONS = "communications"
    SCRIBE = "scribe"
    SME = "sme"


class Contract(BaseModel):
    """Base for recorded models: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


# --- config snapshot --------------------------------------------------------------------


class UserRef(Contract):
    """A person fireline knows, as snapshotted into an incident."""

    handle: str
    name: str
    email: str


class ServiceRef(Contract):
    """A service catalog entry, as snapshotted into an incident."""

    name: str
    owner_team: str | None = None
    tier: str | None = None
    description: str = ""
    components: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    customer_tiers: list[str] = Field(default_factory=list)
    escalation_policy: str | None = None


class IncidentSettings(Contract):
    """Behavioural knobs an incident keeps for its whole life."""

    # How long a resolved incident may be reopened before it closes by itself.
    reopen_window: Duration = timedelta(hours=1)
    # Continue-as-new earlier than the server suggests (tests use a small number).
    max_history_events: int = 10_000


class ConfigSnapshot(Contract):
    """The part of fireline.yaml an incident depends on, frozen at declaration.

    Passing it in the input means a config edit never changes a running incident's past.
    """

    users: dict[str, UserRef] = Field(default_factory=dict)
    service: ServiceRef | None = None
    severity_policy: SeverityPolicy = Field(default_factory=SeverityPolicy)
    settings: IncidentSettings = Field(default_factory=IncidentSettings)
    # Who is paged, how and when; None: this incident pages nobody.
    escalation: EscalationSnapshot | None = None
    # War room, stakeholder updates and status page; None: the incident only records updates.
    comms: CommsSnapshot | None = None


# --- incident state ---------------------------------------------------------------------


class TimelineEntry(Contract):
    """One thing that happened in an incident, in order."""

    id: str
    at: datetime
    kind: str
    actor: str | None = None
    text: str
    data: dict[str, Any] = Field(default_factory=dict)


# The label a drill's alerts carry; the incidents they declare are drills.
DRILL_LABEL = "drill"


class IncidentState(Contract):
    """Everything known about an incident; returned by the ``state`` query."""

    id: str
    title: str
    service: str
    severity: Severity
    severity_reason: str = ""
    status: IncidentStatus = IncidentStatus.DECLARED
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    roles: dict[Role, str] = Field(default_factory=dict)
    declared_by: str | None = None
    declared_at: datetime
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    resolution_summary: str | None = None
    timeline: list[TimelineEntry] = Field(default_factory=list)
    # How many runs (continue-as-new generations) this incident has had.
    generation: int = 1
    # Attached alerts: fingerprint → latest change, and which groups feed this incident.
    alerts: dict[str, AlertChange] = Field(default_factory=dict)
    alert_groups: list[str] = Field(default_factory=list)
    # The escalation child's workflow id, once paging started.
    escalation_id: str | None = None
    # Runbook runs started for this incident, oldest first.
    runs: list[RunSummary] = Field(default_factory=list)
    # Declared by a drill's alerts (label drill="true"): practice, not an outage.
    drill: bool = False
    # Communications: the war room, stakeholder updates posted, the status page incident.
    war_room: WarRoom | None = None
    updates: list[StakeholderUpdate] = Field(default_factory=list)
    status_page: StatusPublished | None = None
    # When the next stakeholder update is due (None: no cadence for this severity).
    next_update_due: datetime | None = None
    # The communications child's workflow id, once started.
    comms_id: str | None = None


# --- workflow input / output ------------------------------------------------------------


class DeclareIncident(Contract):
    """IncidentWorkflow input. ``carried`` is set only by continue-as-new."""

    id: str
    title: str
    service: str
    severity: Severity | None = None
    impact: ImpactFacts | None = None
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    declared_by: str | None = None
    commander: str | None = None
    config: ConfigSnapshot = Field(default_factory=ConfigSnapshot)
    carried: IncidentState | None = None
    # Runbooks the declaring alert matched: the incident starts them as it opens.
    runbooks: list[StartRunbook] = Field(default_factory=list)
    # Where to look for what changed recently (the service and what it depends on).
    triage: list[TriageTarget] = Field(default_factory=list)


class IncidentOutcome(Contract):
    """IncidentWorkflow result, written when the incident closes."""

    id: str
    status: IncidentStatus
    severity: Severity
    declared_at: datetime
    acknowledged_at: datetime | None
    mitigated_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None


# --- Updates and Signals ------------------------------------------------------------------


class Acknowledge(Contract):
    """Update: someone owns the response."""

    actor: str


class AssignRole(Contract):
    """Update: give ``role`` to ``user``, or vacate it when ``user`` is None."""

    actor: str
    role: Role
    user: str | None


class SetSeverity(Contract):
    """Update: change severity; the reason goes on the timeline."""

    actor: str
    severity: Severity
    reason: str = Field(min_length=1)


class AddNote(Contract):
    """Update: a free-text note on the timeline."""

    actor: str
    text: str = Field(min_length=1, max_length=20_000)


class MarkMitigated(Contract):
    """Update: customer impact has stopped, the cause may remain."""

    actor: str
    summary: str = ""


class Resolve(Contract):
    """Update: the incident is over."""

    actor: str
    summary: str = Field(min_length=1)


class Reopen(Contract):
    """Update: a resolved incident came back within the reopen window."""

    actor: str
    reason: str = Field(min_length=1)


class Close(Contract):
    """Update: close a resolved incident now rather than at the end of the reopen window."""

    actor: str


class RefusalRecorded(Contract):
    """Signal: an action was refused for authorisation; the refusal belongs on the timeline.

    A validator's rejection writes nothing to history, so the API reports the refusals
    that matter for audit (who tried what, and why it was refused) with this signal.
    """

    actor: str
    action: str
    reason: str


class UpdateResult(Contract):
    """What every incident Update returns: the entry it wrote and the state after it."""

    entry: TimelineEntry
    state: IncidentState


# --- incident number allocation -----------------------------------------------------------


class SequenceInput(Contract):
    """IncidentSequenceWorkflow input; ``next_number`` carries over continue-as-new."""

    next_number: int = 1


class AllocateNumber(Contract):
    """Update: reserve the next incident number, and never one below ``at_least``."""

    requested_by: str | None = None
    # Set after a collision with an existing incident, so the counter jumps past it.
    at_least: int = 0


class AllocatedNumber(Contract):
    """The reserved incident number."""

    number: int


# --- alerts: groups and their incidents -----------------------------------------------------


class GroupedAlert(Contract):
    """An alert as delivered to its group, with the reason it is suppressed, if it is."""

    alert: Alert
    suppressed: str | None = None


class AlertsArrived(Contract):
    """Signal to an AlertGroupWorkflow: one batch's alerts for this group."""

    alerts: list[GroupedAlert]
    received_at: datetime
    # Set by an acknowledge event at the source (PagerDuty Events API): who acknowledged.
    acknowledged_by: str | None = None


class AlertGroupState(Contract):
    """What a group knows; carried over continue-as-new."""

    alerts: dict[str, Alert] = Field(default_factory=dict)
    suppressed: dict[str, str] = Field(default_factory=dict)
    # Fingerprint → the (status, starts_at, ends_at) last passed on to the incident.
    reported: dict[str, str] = Field(default_factory=dict)
    incident_id: str | None = None
    cascade_of: str | None = None
    # Start times of distinct firing alerts, for "N occurrences within a window".
    firing_seen: dict[str, datetime] = Field(default_factory=dict)
    created_at: datetime | None = None
    last_flush_at: datetime | None = None
    duplicates: int = 0
    all_resolved_reported: bool = False
    declarations: int = 0
    # An acknowledgement from the source not yet passed on to the incident.
    ack_pending: str | None = None


class AlertGroupInput(Contract):
    """AlertGroupWorkflow input: the route that owns the group, frozen at its start."""

    group_key: str
    route: ResolvedRoute
    # Services whose open incidents a new group may attach to, nearest first:
    # the route's own service, then what it depends on (transitively).
    correlate_with: list[str] = Field(default_factory=list)
    correlation_window: Duration = timedelta(hours=6)
    # How long a group whose alerts all resolved stays, so a flapping alert rejoins it.
    linger: Duration = timedelta(hours=1)
    max_history_events: int = 10_000
    carried: AlertGroupState | None = None


class AlertChange(Contract):
    """One alert's change as the incident timeline records it."""

    fingerprint: str
    alertname: str
    status: AlertStatus
    summary: str
    labels: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime
    ends_at: datetime | None = None
    suppressed: str | None = None
    generator_url: str | None = None


class AlertsChanged(Contract):
    """Signal to an IncidentWorkflow: alerts of one group changed."""

    group_key: str
    changes: list[AlertChange]
    all_resolved: bool = False
    cascade_note: str | None = None
    # The route's auto-resolve policy; None: resolve only incidents below SEV2.
    auto_resolve: bool | None = None
    # The alerts were acknowledged at their source (e.g. a PagerDuty acknowledge event).
    acknowledged_by: str | None = None


class CorrelateRequest(Contract):
    """Activity input: is there an open incident this group belongs to?"""

    services: list[str]
    window: Duration


class Correlation(Contract):
    """Activity output: the incident to attach to, and why."""

    incident_id: str | None = None
    service: str | None = None
    reason: str = ""


class DeclareFromAlerts(Contract):
    """Activity input: declare an incident for a group (idempotent by ``request_id``)."""

    request_id: str
    title: str
    service: str
    impact: ImpactFacts
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    # The route's escalation policy; None: the service's.
    escalation_policy: str | None = None


class DeclaredIncident(Contract):
    """Activity output."""

    incident_id: str


class AttachAlerts(Contract):
    """Activity input: pass a group's alert changes to its incident."""

    incident_id: str
    changes: AlertsChanged


# --- escalation and paging ------------------------------------------------------------------


class EscalationInput(Contract):
    """EscalationWorkflow input: the policy snapshot and what the pages say."""

    snapshot: EscalationSnapshot
    incident_workflow_id: str
    title: str
    severity: Severity
    service: str
    team: str = ""
    summary: str = ""


class EscalationStop(Contract):
    """Signal: the incident was acknowledged or resolved; stop paging, close what was opened."""

    reason: Literal["acknowledged", "resolved"]
    actor: str | None = None


class EscalateNow(Contract):
    """Signal: skip the rest of this level's wait."""

    actor: str


class PagingEvent(Contract):
    """Signal to the incident: a page went out, failed, was closed, or the policy moved on."""

    kind: Literal[
        "paged",
        "page_failed",
        "page_closed",
        "escalated",
        "exhausted",
        "nobody_on_call",
        "deferred",
    ]
    text: str
    user: str | None = None
    contact: str | None = None
    level: int | None = None
    attempt: int | None = None
    dedup_key: str | None = None


class EscalationOutcome(Contract):
    """EscalationWorkflow result."""

    pages_sent: int
    pages_failed: int
    stopped_by: str | None
    exhausted: bool


class Escalate(Contract):
    """Update: page the next level now."""

    actor: str


# --- on-call overrides made at run time --------------------------------------------------------


class StoredOverride(Contract):
    """An override added through the API or CLI, for one schedule."""

    id: str
    schedule: str
    override: Override


class OverrideStoreInput(Contract):
    """OverrideStoreWorkflow input; ``overrides`` carries over continue-as-new."""

    overrides: list[StoredOverride] = Field(default_factory=list)
    max_history_events: int | None = None


class AddOverride(Contract):
    """Update: put ``user`` on call on ``schedule`` for [start, end)."""

    schedule: str
    user: str
    start: datetime
    end: datetime
    created_by: str
    reason: str = ""


class RemoveOverride(Contract):
    """Update: take an override back."""

    id: str
    actor: str


# --- runbooks ---------------------------------------------------------------------------------

RunStatus = Literal["running", "paused", "succeeded", "failed", "aborted"]
StepState = Literal[
    "running",
    "waiting_approval",
    "succeeded",
    "failed",
    "skipped",
]


class StartRunbook(Contract):
    """Update on the incident: run ``runbook`` (a snapshot; editing the file later changes
    nothing for this run) as a child workflow."""

    runbook: Runbook
    actor: str
    params: dict[str, JsonValue] = Field(default_factory=dict)
    # The alert that triggered the run; None when a person started it.
    alert: AlertFacts | None = None
    dry_run: bool = False
    # Cluster name → the task queue its worker polls, from config at the time of the start.
    cluster_queues: dict[str, str] = Field(default_factory=dict)
    # Group name → members (teams from config), for approvals by group.
    groups: dict[str, list[str]] = Field(default_factory=dict)


class TriageTarget(Contract):
    """A namespace of a cluster whose recent rollouts triage reads, for one service."""

    service: str
    cluster: str
    # The cluster's task queue: its worker holds the credentials.
    queue: str
    namespace: str


class RunSummary(Contract):
    """One runbook run of an incident, as the incident knows it."""

    run_id: str
    workflow_id: str
    runbook: str
    status: RunStatus = "running"
    dry_run: bool = False
    started_by: str
    started_at: datetime
    # Set while a step waits for an approval.
    waiting_step: str | None = None


class RunbookInput(Contract):
    """RunbookWorkflow input."""

    run_id: str
    incident_workflow_id: str
    runbook: Runbook
    params: dict[str, JsonValue] = Field(default_factory=dict)
    alert: AlertFacts | None = None
    incident: IncidentFacts
    roles: dict[str, str] = Field(default_factory=dict)
    users: list[str] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    dry_run: bool = False
    started_by: str
    cluster_queues: dict[str, str] = Field(default_factory=dict)


class Measurement(Contract):
    """One measurement of a check step."""

    # PromQL answers NaN and ±Inf; JSON cannot hold them as numbers.
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    at: datetime
    values: list[float] = Field(default_factory=list)
    phase: str
    error: str = ""


class StepRecord(Contract):
    """One visit of one step: what went in, what came out, who decided."""

    step_id: str
    kind: str
    visit: int = 1
    status: StepState = "running"
    started_at: datetime
    ended_at: datetime | None = None
    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    output: JsonValue = None
    summary: str = ""
    error: str = ""
    attempts: int = 0
    actor: str | None = None
    comment: str = ""
    measurements: list[Measurement] = Field(default_factory=list)


class PendingApproval(Contract):
    """The approval a run waits for."""

    step_id: str
    prompt: str
    roles: list[str] = Field(default_factory=list)
    users: list[str] = Field(default_factory=list)
    groups: list[str] = Field(default_factory=list)
    deadline: datetime
    escalated: bool = False


class RunbookRunState(Contract):
    """The run as the query ``state`` shows it."""

    run_id: str
    runbook: str
    incident_id: str
    status: RunStatus = "running"
    dry_run: bool = False
    started_by: str
    started_at: datetime
    ended_at: datetime | None = None
    paused_by: str | None = None
    current_step: str | None = None
    pending: PendingApproval | None = None
    steps: list[StepRecord] = Field(default_factory=list)
    error: str = ""
    in_failure_handler: bool = False


class ApprovalDecision(Contract):
    """Update on a run: approve or reject the step that waits."""

    step_id: str
    approve: bool
    actor: str
    comment: str = ""


class RunControl(Contract):
    """Update on a run: pause, resume or abort, by the commander."""

    actor: str
    reason: str = ""


class IncidentFactsChanged(Contract):
    """Signal to a run: the incident changed (status, severity, roles)."""

    incident: IncidentFacts
    roles: dict[str, str] = Field(default_factory=dict)


class AlertStatusChanged(Contract):
    """Signal to a run: the alert that started it fired again or resolved."""

    status: Literal["firing", "resolved"]


class RunbookEvent(Contract):
    """Signal to the incident: something in a run belongs on the timeline."""

    run_id: str
    runbook: str
    kind: str
    text: str
    actor: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = "running"
    waiting_step: str | None = None
    # A passed check: the incident is mitigated (if it is not already).
    mitigated: bool = False
    # The runbook asks for more people: page the next escalation level.
    escalate: bool = False


# --- communications: war room, stakeholder updates, status page ------------------------
# Names and values follow Atlassian Statuspage, so both status page providers map 1:1.


class ComponentStatus(StrEnum):
    """A status page component's state."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNDER_MAINTENANCE = "under_maintenance"


class StatusImpact(StrEnum):
    """How bad an incident is for customers."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"


class PublicStatus(StrEnum):
    """Where a status page incident stands, as customers read it."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"


class Audience(StrEnum):
    """Who a stakeholder update is written for; each has its template and redaction."""

    RESPONDERS = "responders"
    EXECUTIVES = "executives"
    CUSTOMERS = "customers"


class StatusPublication(Contract):
    """One customer-facing update for a status page; providers dedupe on ``update_id``.

    ``body`` and ``title`` are already redacted for customers. ``components`` holds only
    the components this incident affects (component id from config → status).
    """

    incident_id: str
    update_id: str
    at: datetime
    title: str
    status: PublicStatus
    impact: StatusImpact
    body: str
    components: dict[str, ComponentStatus] = Field(default_factory=dict)


class StatusPublished(Contract):
    """What a status page provider did with a publication."""

    provider: str
    # The provider's incident id (Statuspage's incident id; the built-in page's incident id).
    external_id: str
    url: str | None = None


class WarRoomLinks(Contract):
    """Links posted in the war room summary."""

    dashboard: str | None = None
    temporal_ui: str | None = None
    bridge: str | None = None


class OpenWarRoom(Contract):
    """Activity input: open (or find again) the incident's war room."""

    incident_id: str
    title: str
    severity: Severity
    service: str
    summary: str = ""
    commander: str | None = None
    # Responders' chat user ids (already mapped from fireline users), invited on open.
    invite: list[str] = Field(default_factory=list)
    links: WarRoomLinks = Field(default_factory=WarRoomLinks)


class WarRoom(Contract):
    """Where the incident's conversation happens; returned by ``war_room.open``."""

    provider: Literal["slack", "webhook"]
    channel_id: str | None = None
    channel_name: str | None = None
    url: str | None = None
    # The summary message; mirrored events are threaded under it.
    thread_ts: str | None = None


class WarRoomPost(Contract):
    """Activity input: mirror one timeline event into the war room, threaded."""

    incident_id: str
    room: WarRoom
    # The timeline entry id: the idempotency key for the post.
    entry_id: str
    kind: str
    text: str


class PostUpdate(Contract):
    """Incident Update argument: one stakeholder update, written once for every audience.

    Unset fields take the incident's current values (public status from the incident's
    status, components and impact from the last update or the service's mapping).
    """

    actor: str
    text: str
    status: PublicStatus | None = None
    impact: StatusImpact | None = None
    components: dict[str, ComponentStatus] | None = None
    audiences: list[Audience] = Field(default_factory=lambda: list(Audience))


class UpdateDelivery(Contract):
    """How one audience's copy of an update went."""

    audience: Audience
    channel: str
    ok: bool
    detail: str = ""


class StakeholderUpdate(Contract):
    """A posted stakeholder update, as the incident records it."""

    id: str
    at: datetime
    actor: str
    text: str
    status: PublicStatus
    impact: StatusImpact
    components: dict[str, ComponentStatus] = Field(default_factory=dict)
    audiences: list[Audience] = Field(default_factory=list)
    deliveries: list[UpdateDelivery] = Field(default_factory=list)


class RedactionRule(Contract):
    """A pattern whose matches never reach an audience; ``replacement`` stands in for them."""

    name: str
    pattern: str
    replacement: str


class AudiencePolicy(Contract):
    """How one audience hears about an incident: its template, redaction and recipients."""

    # str.format placeholders: incident_id, title, service, severity, status, impact, text,
    # components (validated when the config loads).
    template: str = "{text}"
    redact: list[RedactionRule] = Field(default_factory=list)
    # Executives: the people who receive each update (their first non-paging contact).
    recipients: dict[str, ContactMethod] = Field(default_factory=dict)


class SizeLimit(Contract):
    """The longest text a channel accepts, and whose limit it is (for the refusal)."""

    chars: int
    vendor: str


class CommsSnapshot(Contract):
    """Communications config, frozen into an incident at declaration."""

    # How often stakeholders must hear from the incident, per severity; absent: no cadence.
    cadence: dict[Severity, Duration] = Field(default_factory=dict)
    # After an update is due and missed for this long, the commander is told.
    overdue_after: Duration = timedelta(minutes=10)
    # Severities that open a war room (empty: none).
    war_room_severities: list[Severity] = Field(default_factory=list)
    war_room_links: WarRoomLinks = Field(default_factory=WarRoomLinks)
    mirror_kinds: list[str] = Field(default_factory=list)
    # fireline handle → chat user id, for war room invites.
    chat_ids: dict[str, str] = Field(default_factory=dict)
    # Where reminders reach each person (their first non-paging contact method).
    contacts: dict[str, ContactMethod] = Field(default_factory=dict)
    audiences: dict[Audience, AudiencePolicy] = Field(default_factory=dict)
    # Status page: whether one is configured, every component id, and this service's ones.
    status_page: bool = False
    all_components: list[str] = Field(default_factory=list)
    components: list[str] = Field(default_factory=list)
    # Per audience, the longest update its channel accepts.
    limits: dict[Audience, SizeLimit] = Field(default_factory=dict)
    # Said to customers when the incident resolves, if they were told about it.
    resolved_text: str = "This incident has been resolved."


class CommsFacts(Contract):
    """What the communications workflow knows of its incident; re-sent on every change."""

    incident_id: str
    title: str
    service: str
    severity: Severity
    status: IncidentStatus
    summary: str = ""
    roles: dict[Role, str] = Field(default_factory=dict)
    next_update_due: datetime | None = None


class MirrorItem(Contract):
    """A timeline entry to post into the war room."""

    entry_id: str
    kind: str
    text: str


class DeliverUpdate(Contract):
    """A stakeholder update to deliver: the texts are rendered and redacted per audience."""

    update: StakeholderUpdate
    texts: dict[Audience, str] = Field(default_factory=dict)
    # The incident title as customers may read it (redacted).
    public_title: str


class CommsNews(Contract):
    """Signal to the communications workflow: what changed, in order."""

    facts: CommsFacts | None = None
    mirror: list[MirrorItem] = Field(default_factory=list)
    deliver: list[DeliverUpdate] = Field(default_factory=list)


class CommsInput(Contract):
    """CommsWorkflow input; the rest is carried over continue-as-new."""

    incident_workflow_id: str
    snapshot: CommsSnapshot
    facts: CommsFacts
    room: WarRoom | None = None
    pending: CommsNews = Field(default_factory=CommsNews)
    # Reminders already sent: "<due iso>:<stage>".
    reminded: list[str] = Field(default_factory=list)


class CommsEvent(Contract):
    """Signal to the incident: what communications did, for its state and timeline."""

    kind: str
    text: str
    room: WarRoom | None = None
    published: StatusPublished | None = None
    update_id: str | None = None
    deliveries: list[UpdateDelivery] = Field(default_factory=list)


# IncidentState and DeclareIncident refer to models defined after them.
IncidentState.model_rebuild()
DeclareIncident.model_rebuild()
ConfigSnapshot.model_rebuild()

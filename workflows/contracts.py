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
    # Look up similar past incidents at declaration (``knowledge.similar``): set by the
    # declaring service, whose workers offer the activity.
    suggest_similar: bool = False
    # Reviewers, due dates and reminders of the postmortem the incident starts on resolve;
    # None: no postmortem workflow.
    postmortem: PostmortemSnapshot | None = None


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
    # The postmortem's workflow id, once the incident resolved and started it.
    postmortem_id: str | None = None


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
    """What every incident Update returns: the entry it wrote and the state after it.

    Every result is written into the workflow's history. With the whole timeline in each,
    history grew with the square of the number of Updates and a result passed the
    server's 2 MiB payload limit near 5,500 entries (bench/RESULTS.md). So ``state`` carries
    only the newest entries and ``timeline_omitted`` says how many older ones were left out;
    the ``state`` query still has them all.
    """

    entry: TimelineEntry
    state: IncidentState
    timeline_omitted: int = 0


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
    # Fingerprint → when its resolution arrived: a firing copy of the same alert (same
    # startsAt) soon after is a late re-delivery, not the alert firing again.
    resolved_received: dict[str, datetime] = Field(default_factory=dict)


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


class WarRoomPosted(Contract):
    """What ``war_room.post`` did with one timeline entry."""

    provider: Literal["slack", "webhook"]
    channel_id: str | None = None
    # Slack's message ts (None for a webhook).
    ts: str | None = None
    # True: an earlier attempt had already posted it; nothing was posted this time.
    duplicate: bool = False


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


# --- the built-in status page (StatusPageWorkflow) ----------------------------------

# One long-lived page per deployment: every incident publishes into the same workflow.
STATUS_PAGE_WORKFLOW_ID = "status-page"
STATUS_PAGE_WORKFLOW_TYPE = "StatusPageWorkflow"
# The same limits as Atlassian Statuspage (incident name 255, update body 25,000
# characters), so switching providers never changes which updates are accepted.
MAX_TITLE_CHARS = 255
MAX_BODY_CHARS = 25_000
# How far back the page shows resolved incidents, transitions and uptime bars.
RETENTION_DAYS = 90


class PageComponent(Contract):
    """A component customers see, as configured."""

    id: str
    name: str
    description: str = ""
    group: str | None = None


class PageGroup(Contract):
    """A named group of components (e.g. "Payments")."""

    id: str
    name: str


class Maintenance(Contract):
    """A scheduled maintenance window: its components are under maintenance inside it."""

    id: str
    title: str
    components: list[str] = Field(default_factory=list)
    starts_at: datetime
    ends_at: datetime
    body: str = ""


class PublishedUpdate(Contract):
    """One update as customers read it (already redacted by the publisher)."""

    update_id: str
    at: datetime
    status: PublicStatus
    impact: StatusImpact
    body: str
    components: dict[str, ComponentStatus] = Field(default_factory=dict)


class PublicIncident(Contract):
    """An incident as the public page shows it: only what was published."""

    incident_id: str
    title: str
    status: PublicStatus
    impact: StatusImpact
    started_at: datetime
    updated_at: datetime
    resolved_at: datetime | None = None
    # Each affected component's latest published status (later updates override earlier).
    components: dict[str, ComponentStatus] = Field(default_factory=dict)
    # Oldest first, in the order they were published.
    updates: list[PublishedUpdate] = Field(default_factory=list)


class StatusTransition(Contract):
    """A component's incident-driven status changed at ``at`` (for uptime bars)."""

    component: str
    at: datetime
    status: ComponentStatus


class StatusPageCarried(Contract):
    """What one run hands the next when continuing as new."""

    incidents: list[PublicIncident] = Field(default_factory=list)
    transitions: list[StatusTransition] = Field(default_factory=list)
    maintenance: list[Maintenance] = Field(default_factory=list)
    tracked_since: datetime | None = None
    generation: int = 0


class StatusPageInput(Contract):
    """How the status page workflow starts: the configured page, and any carried state."""

    title: str = "Status"
    public_url: str | None = None
    # Empty: any component id is accepted (no config); else publications must use these.
    components: list[PageComponent] = Field(default_factory=list)
    groups: list[PageGroup] = Field(default_factory=list)
    # Maintenance from config at start; more can be scheduled with an Update.
    maintenance: list[Maintenance] = Field(default_factory=list)
    carried: StatusPageCarried | None = None
    # Continue as new at this many events (tests); None: when the server suggests it.
    max_history_events: int | None = None


class ScheduleMaintenance(Contract):
    """Update argument: add (or replace, by id) a maintenance window."""

    maintenance: Maintenance


class ComponentNow(Contract):
    """A component and its status at the snapshot's time."""

    id: str
    name: str
    description: str = ""
    group: str | None = None
    status: ComponentStatus = ComponentStatus.OPERATIONAL


class StatusPageSnapshot(Contract):
    """Everything the public page needs, as of ``at`` (the workflow's clock)."""

    at: datetime
    title: str
    public_url: str | None = None
    tracked_since: datetime
    components: list[ComponentNow] = Field(default_factory=list)
    groups: list[PageGroup] = Field(default_factory=list)
    # Newest first: unresolved ones, then those resolved within the retention period.
    incidents: list[PublicIncident] = Field(default_factory=list)
    # Soonest first; windows that ended are dropped after the retention period.
    maintenance: list[Maintenance] = Field(default_factory=list)
    transitions: list[StatusTransition] = Field(default_factory=list)


# --- postmortems and action items: config snapshot ------------------------------------


class SectionKey(StrEnum):
    """The sections of the blameless template, in the order they are written."""

    SUMMARY = "summary"
    IMPACT = "impact"
    TRIGGER = "trigger"
    DETECTION = "detection"
    RESPONSE = "response"
    RECOVERY = "recovery"
    CONTRIBUTING_FACTORS = "contributing_factors"
    ROOT_CAUSE = "root_cause"
    WENT_WELL = "went_well"
    LUCKY = "lucky"
    ACTION_ITEMS = "action_items"


DEFAULT_REQUIRED_SECTIONS = [
    SectionKey.SUMMARY,
    SectionKey.IMPACT,
    SectionKey.TRIGGER,
    SectionKey.CONTRIBUTING_FACTORS,
    SectionKey.ROOT_CAUSE,
]


class Person(Contract):
    """Someone a postmortem or an action item may name, and how reminders reach them."""

    handle: str
    name: str = ""
    email: str = ""
    # Who an overdue action item escalates to; None: the incident's commander.
    manager: str | None = None
    # Where reminders go: a low-urgency channel (Slack, email, console), never a pager.
    contact: ContactMethod


class ReminderPolicy(Contract):
    """When an action item's owner hears about it, and when its escalation goes out."""

    # Reminders this long before the due date (each at most once).
    before: list[Duration] = Field(default_factory=lambda: [timedelta(days=3), timedelta(days=1)])
    # Once due: a reminder at the due date, then one every ``overdue_every``.
    overdue_every: Duration = timedelta(days=2)
    # Overdue this long: the owner's manager (or the commander) hears about it, once per owner.
    escalate_after: Duration = timedelta(days=3)
    # Tell the owner at once when an item is created for them or handed to them.
    notify_on_assign: bool = True


class PostmortemSnapshot(Contract):
    """The postmortem part of fireline.yaml, frozen into the incident's config snapshot."""

    # Severity value → reviewer handles; severities not listed have no named reviewers.
    reviewers: dict[str, list[str]] = Field(default_factory=dict)
    # Severity value → time from resolution to the postmortem's due date.
    due_after: dict[str, Duration] = Field(default_factory=dict)
    default_due_after: Duration = timedelta(days=7)
    required_sections: list[SectionKey] = Field(
        default_factory=lambda: list(DEFAULT_REQUIRED_SECTIONS)
    )
    # Where Markdown and JSON exports go (a docs repository's checkout); None: no export.
    export_dir: str | None = None
    # Reminders to the author and the reviewers this long before the due date, and
    # every ``overdue_every`` after it until published.
    remind_before: list[Duration] = Field(default_factory=lambda: [timedelta(days=2)])
    overdue_every: Duration = timedelta(days=2)
    action_items: ReminderPolicy = Field(default_factory=ReminderPolicy)
    # Everyone who may own an action item or review, with their reminder contact.
    people: dict[str, Person] = Field(default_factory=dict)
    # The tracker action items get a ticket in (a name ``tracker.open`` knows); None: none.
    tracker: str | None = None

    def reviewers_for(self, severity: Severity) -> list[str]:
        """The reviewers named for ``severity``."""
        return list(self.reviewers.get(severity.value, []))

    def due_offset(self, severity: Severity) -> timedelta:
        """How long after resolution a postmortem of ``severity`` is due."""
        return self.due_after.get(severity.value, self.default_due_after)


# --- postmortem workflow ----------------------------------------------------------------


class PostmortemStatus(StrEnum):
    """Review states: draft → in review → published (changes requested: back to draft)."""

    GATHERING = "gathering"
    DRAFT = "draft"
    IN_REVIEW = "in_review"
    PUBLISHED = "published"


class PostmortemInput(Contract):
    """PostmortemWorkflow input: which incident, and the config it is reviewed under."""

    incident_id: str
    incident_workflow_id: str
    title: str
    severity: Severity
    service: str
    commander: str | None = None
    resolved_at: datetime
    settings: PostmortemSnapshot = Field(default_factory=PostmortemSnapshot)
    # Gather the record again this long after the start (the incident's reopen window), so
    # the draft also shows the close or a reopening; None: only on request.
    refresh_after: Duration | None = None

    @classmethod
    def for_incident(
        cls,
        state: IncidentState,
        incident_workflow_id: str,
        settings: PostmortemSnapshot,
        refresh_after: timedelta | None = None,
    ) -> PostmortemInput:
        """What a resolving incident passes to its postmortem."""
        return cls(
            refresh_after=refresh_after,
            incident_id=state.id,
            incident_workflow_id=incident_workflow_id,
            title=state.title,
            severity=state.severity,
            service=state.service,
            commander=state.roles.get(Role.COMMANDER),
            resolved_at=state.resolved_at or state.declared_at,
            settings=settings,
        )


class Section(Contract):
    """One section of the postmortem: its text, and the question it answers."""

    key: SectionKey
    title: str
    text: str = ""
    # The question the section answers, in blameless words; shown while it is empty.
    prompt: str = ""
    # True while the text is fireline's draft from the incident's history.
    drafted: bool = False
    edited_by: str | None = None
    edited_at: datetime | None = None

    @property
    def empty(self) -> bool:
        """Nothing written yet."""
        return not self.text.strip()


class TimelineItem(Contract):
    """One line of the postmortem's timeline."""

    at: datetime
    # Time since the incident was declared (negative: before, e.g. the first alert).
    offset: timedelta
    phase: str
    text: str


class AlertDigest(Contract):
    """An alert attached to the incident."""

    alertname: str
    status: str
    summary: str
    starts_at: datetime
    ends_at: datetime | None = None


class CheckDigest(Contract):
    """A runbook check step: what was measured and what it concluded."""

    run_id: str
    runbook: str
    step_id: str
    status: str
    summary: str
    measurements: int
    last_values: list[float] = Field(default_factory=list)


class ApprovalDigest(Contract):
    """A runbook step that waited for a decision."""

    run_id: str
    runbook: str
    step_id: str
    decision: str
    actor: str | None = None
    comment: str = ""
    at: datetime | None = None


class ImpactWindow(Contract):
    """When customers were affected, and how long each phase of the response took."""

    start: datetime
    end: datetime | None = None
    first_alert_at: datetime | None = None
    declared_at: datetime
    acknowledged_at: datetime | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    time_to_detect: timedelta | None = None
    time_to_acknowledge: timedelta | None = None
    time_to_mitigate: timedelta | None = None
    time_to_resolve: timedelta | None = None
    duration: timedelta | None = None


class IncidentRecord(Contract):
    """What the draft is built from: the incident's state and its runbook runs' states."""

    incident: IncidentState
    runs: list[RunbookRunState] = Field(default_factory=list)
    # Runs whose state could not be read (the workflow is gone), with why.
    missing_runs: dict[str, str] = Field(default_factory=dict)


class PostmortemFacts(Contract):
    """The facts the draft derived from the record; kept verbatim in exports."""

    incident_id: str
    title: str
    service: str
    severity: Severity
    drill: bool = False
    commander: str | None = None
    roles: dict[str, str] = Field(default_factory=dict)
    window: ImpactWindow
    timeline: list[TimelineItem] = Field(default_factory=list)
    alerts: list[AlertDigest] = Field(default_factory=list)
    checks: list[CheckDigest] = Field(default_factory=list)
    approvals: list[ApprovalDigest] = Field(default_factory=list)
    pages: int = 0
    severity_changes: list[str] = Field(default_factory=list)
    runbooks: list[str] = Field(default_factory=list)


class ActionItemKind(StrEnum):
    """What an action item changes: prevent recurrence, detect sooner, mitigate faster,
    or improve the process."""

    PREVENT = "prevent"
    DETECT = "detect"
    MITIGATE = "mitigate"
    PROCESS = "process"


class ActionItemPriority(StrEnum):
    """How urgent an action item is."""

    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


ActionItemStatus = Literal["open", "done", "dropped"]


class ActionItemSummary(Contract):
    """An action item as its postmortem lists it."""

    id: str
    workflow_id: str
    title: str
    owner: str
    priority: ActionItemPriority
    kind: ActionItemKind
    due_at: datetime
    status: ActionItemStatus = "open"
    link: str | None = None
    snoozed_until: datetime | None = None
    escalated: bool = False


class ReviewEvent(Contract):
    """One step of the review: who moved the postmortem, when, and why."""

    at: datetime
    actor: str
    action: str
    comment: str = ""


class ReminderSent(Contract):
    """A reminder the workflow sent (or failed to send)."""

    at: datetime
    key: str
    kind: str
    to: str
    ok: bool = True
    detail: str = ""


class PostmortemState(Contract):
    """The postmortem as the ``state`` query shows it."""

    id: str
    incident_id: str
    title: str
    service: str
    severity: Severity
    status: PostmortemStatus = PostmortemStatus.GATHERING
    author: str | None = None
    reviewers: list[str] = Field(default_factory=list)
    approvals: list[str] = Field(default_factory=list)
    required_sections: list[SectionKey] = Field(default_factory=list)
    created_at: datetime
    due_at: datetime
    drafted_at: datetime | None = None
    published_at: datetime | None = None
    published_by: str | None = None
    facts: PostmortemFacts | None = None
    sections: list[Section] = Field(default_factory=list)
    action_items: list[ActionItemSummary] = Field(default_factory=list)
    review: list[ReviewEvent] = Field(default_factory=list)
    reminders: list[ReminderSent] = Field(default_factory=list)
    # Why the draft has no facts (the incident could not be read), if so.
    gather_error: str = ""
    # The files the last export wrote, and why the last export failed (if it did).
    exported: list[str] = Field(default_factory=list)
    export_error: str = ""

    def section(self, key: SectionKey) -> Section | None:
        """The section ``key``, if the draft has it."""
        return next((s for s in self.sections if s.key is key), None)

    def empty_required(self) -> list[SectionKey]:
        """Required sections with nothing written, in template order."""
        missing = []
        for key in self.required_sections:
            section = self.section(key)
            if key is SectionKey.ACTION_ITEMS and self.action_items:
                continue
            if section is None or section.empty:
                missing.append(key)
        return missing


class EditSection(Contract):
    """Update: replace a section's text."""

    actor: str
    section: SectionKey
    text: str


class ReviewAction(Contract):
    """Update argument for submit, approve, request changes and publish."""

    actor: str
    comment: str = ""


class PostmortemResult(Contract):
    """What a postmortem Update returns: the state, and blameless-wording hints."""

    state: PostmortemState
    warnings: list[str] = Field(default_factory=list)


class ExportPostmortem(Contract):
    """Update: write the Markdown and JSON files now."""

    actor: str


class AddActionItem(Contract):
    """Update on the postmortem: track an improvement as an ActionItemWorkflow."""

    actor: str
    title: str
    owner: str
    due_at: datetime
    priority: ActionItemPriority = ActionItemPriority.P2
    kind: ActionItemKind = ActionItemKind.PREVENT
    link: str | None = None


class ActionItemChanged(Contract):
    """Signal from an action item to its postmortem: the item's new summary."""

    item: ActionItemSummary


class PostmortemOutcome(Contract):
    """PostmortemWorkflow result."""

    id: str
    status: PostmortemStatus
    published_at: datetime | None = None
    action_items: int = 0


# --- action item workflow ---------------------------------------------------------------


class ActionItemInput(Contract):
    """ActionItemWorkflow input."""

    id: str
    postmortem_workflow_id: str
    incident_id: str
    severity: Severity
    title: str
    owner: str
    priority: ActionItemPriority
    kind: ActionItemKind
    due_at: datetime
    link: str | None = None
    created_by: str
    commander: str | None = None
    policy: ReminderPolicy = Field(default_factory=ReminderPolicy)
    people: dict[str, Person] = Field(default_factory=dict)
    tracker: str | None = None


class ActionItemEvent(Contract):
    """One change of an action item, for its history."""

    at: datetime
    actor: str | None
    text: str


class ActionItemState(Contract):
    """The item as the ``state`` query shows it."""

    id: str
    postmortem_id: str
    incident_id: str
    title: str
    owner: str
    priority: ActionItemPriority
    kind: ActionItemKind
    due_at: datetime
    link: str | None = None
    status: ActionItemStatus = "open"
    created_at: datetime
    created_by: str
    # Reminders for the current owner count from here (creation or reassignment)...
    assigned_at: datetime
    # ...and are keyed by this: the first owner is 1, each reassignment adds one.
    assignment: int = 1
    snoozed_until: datetime | None = None
    escalated: bool = False
    closed_at: datetime | None = None
    closed_by: str | None = None
    reminders: list[ReminderSent] = Field(default_factory=list)
    events: list[ActionItemEvent] = Field(default_factory=list)
    # The external ticket (GitHub issue number, Jira key) and why the tracker failed, if so.
    ticket_id: str | None = None
    ticket_url: str | None = None
    ticket_error: str = ""

    def summary(self, workflow_id: str) -> ActionItemSummary:
        """The line the postmortem lists."""
        return ActionItemSummary(
            id=self.id,
            workflow_id=workflow_id,
            title=self.title,
            owner=self.owner,
            priority=self.priority,
            kind=self.kind,
            due_at=self.due_at,
            status=self.status,
            link=self.link,
            snoozed_until=self.snoozed_until,
            escalated=self.escalated,
        )


class CompleteActionItem(Contract):
    """Update: the item is done (or dropped, with a reason)."""

    actor: str
    note: str = ""


class ReassignActionItem(Contract):
    """Update: a new owner takes the item."""

    actor: str
    owner: str
    note: str = ""


class SnoozeActionItem(Contract):
    """Update: hold reminders until ``until`` (the due date stays)."""

    actor: str
    until: datetime
    note: str = ""


# IncidentState and DeclareIncident refer to models defined after them.
IncidentState.model_rebuild()
DeclareIncident.model_rebuild()
ConfigSnapshot.model_rebuild()

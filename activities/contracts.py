"""Everything the activities record in Temporal history: their inputs and outputs.

A change here is a versioning event, as for ``workflows/contracts.py``: add fields with
defaults, never rename or remove one. Activities never import ``workflows``, so the few
enums shared with the workflows (severity) are mirrored here by value.

Secrets never live in these models: a contact method names *where* to page (a channel, an
address, the name of a PagerDuty routing key), and the provider, built by
``worker/wiring.py`` from settings, holds the credential.

Carried by ``temporalio.contrib.pydantic.pydantic_data_converter``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class Contract(BaseModel):
    """Base for recorded models: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class PageAction(StrEnum):
    """What a page does at the vendor: open it, or close the loop on it."""

    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


class PageSeverity(StrEnum):
    """Incident severity by value, mirroring ``workflows.severity.Severity``."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class Urgency(StrEnum):
    """High urgency wakes people up; low urgency waits for working hours."""

    HIGH = "high"
    LOW = "low"


class ContactKind(StrEnum):
    """The notification channels fireline can page through; one provider module each."""

    PAGERDUTY = "pagerduty"
    OPSGENIE = "opsgenie"
    SLACK = "slack"
    EMAIL = "email"
    WEBHOOK = "webhook"
    CONSOLE = "console"


class ResponderType(StrEnum):
    """Opsgenie responder types; users are addressed by username, the rest by name."""

    USER = "user"
    TEAM = "team"
    ESCALATION = "escalation"
    SCHEDULE = "schedule"


class ContactMethod(Contract):
    """Where and how one person (or team) is paged.

    ``address`` by kind: pagerduty — the name of a routing key the provider holds
    (empty: ``default``); opsgenie — the responder's username or team name; slack — a
    channel id or a user id (a DM); email — the mailbox; webhook — an absolute URL (empty:
    the provider's default); console — unused.
    """

    kind: ContactKind
    address: str = ""
    # Opsgenie only: how ``address`` is to be read.
    responder_type: ResponderType = ResponderType.USER
    # Email only: the display name in the To header.
    display_name: str = ""


class Link(Contract):
    """A link shown with a page (runbook, dashboard, incident)."""

    href: str
    text: str = ""


class Page(Contract):
    """One notification to one contact method; the input of ``notify.send``."""

    # Derived by the caller from (incident, level, attempt), so a retried activity reuses it
    # and the vendor deduplicates; acknowledge/resolve reuse the trigger's key.
    dedup_key: str = Field(min_length=1, max_length=255)
    incident_id: str = Field(min_length=1)
    title: str = Field(min_length=1)
    summary: str = ""
    severity: PageSeverity
    urgency: Urgency = Urgency.HIGH
    # The handle of the person (or team) being paged, for the inbox and the timeline.
    recipient: str
    contact: ContactMethod
    action: PageAction = PageAction.TRIGGER
    service: str = ""
    team: str = ""
    # The one-click acknowledge link (``/v1/ack/<signed token>``); empty when not issued.
    ack_url: str = ""
    links: list[Link] = Field(default_factory=list)
    details: dict[str, str] = Field(default_factory=dict)
    # For acknowledge/resolve: the ``external_id`` of the trigger's result (Slack threads
    # follow-ups under it, email replies to it).
    external_id: str = ""
    # Who acknowledged or resolved, for the follow-up's text.
    actor: str = ""
    # A reminder or a stakeholder update, not a page: nobody acknowledges it, so it carries
    # no acknowledge link.
    informational: bool = False

    @property
    def delivery_key(self) -> str:
        """The idempotency key of this delivery: the dedup key, suffixed for follow-ups."""
        if self.action is PageAction.TRIGGER:
            return self.dedup_key
        return f"{self.dedup_key}:{self.action.value}"


class PageResult(Contract):
    """What the vendor said; the output of ``notify.send``."""

    provider: ContactKind
    delivered: bool
    # The vendor's handle for follow-ups: PagerDuty dedup key, Opsgenie alias, Slack
    # ``<channel>:<ts>``, email Message-ID, inbox key.
    external_id: str = ""
    detail: str = ""
    action: PageAction = PageAction.TRIGGER
    dedup_key: str = ""


class ActionRequest(Contract):
    """The input of every runbook action activity (``k8s.rollback``, ``http.request``, ...).

    ``inputs`` are the step's ``with`` values after substitution; each action validates them
    with its own model and refuses bad ones as a non-retryable ``ApplicationError`` naming
    the field. ``idempotency_key`` is stable across activity retries and worker restarts
    (run id + step id + the step's visit), so an action that already took effect reports
    what it did instead of doing it again.
    """

    incident_id: str = Field(min_length=1)
    run_id: str = Field(min_length=1)
    step_id: str = Field(min_length=1)
    idempotency_key: str = Field(min_length=1)
    inputs: dict[str, JsonValue] = Field(default_factory=dict)
    # Dry run: report what would be done, change nothing.
    dry_run: bool = False
    # Who approved or started the run, for audit trails on the target system.
    actor: str = ""


class ActionResult(Contract):
    """The output of every runbook action activity."""

    # Referenced by later steps as ``{steps.<id>.output.<key>}``.
    output: dict[str, JsonValue] = Field(default_factory=dict)
    # One line for the incident timeline: what was done (or would be, in a dry run).
    summary: str = ""
    # False when the target state already held (an idempotent no-op) or in a dry run.
    changed: bool = False
    dry_run: bool = False
    # Which attempt produced this result; stamped by the worker's action wrapper.
    attempt: int = 1


class MetricQuery(Contract):
    """The input of ``metrics.query``: one instant query, one measurement of a check step."""

    # A key of ``metrics`` in fireline.yaml; a check step's ``provider``.
    source: str = Field("prometheus", min_length=1)
    query: str = Field(min_length=1)
    # The evaluation time; None: the activity's clock when it runs (recorded in the sample).
    time: datetime | None = None


class MetricSample(Contract):
    """The output of ``metrics.query``: the values a check's conditions read as ``result``."""

    # PromQL answers NaN and ±Inf (0/0, x/0), which JSON cannot write as numbers: without
    # this they would be recorded as null and the sample could not be read back.
    model_config = ConfigDict(ser_json_inf_nan="strings")

    source: str
    query: str
    result_type: Literal["vector", "scalar"]
    # result[0], result[1], ...: one per series, ordered by label set (activities.metrics).
    values: list[float] = Field(default_factory=list)
    # The label set of each value, in the same order; a scalar's is empty.
    labels: list[dict[str, str]] = Field(default_factory=list)
    # When the query was evaluated.
    time: datetime
    # Prometheus' warnings and info annotations (e.g. "metric might not be a counter").
    warnings: list[str] = Field(default_factory=list)


# --- knowledge: similar past incidents (knowledge.similar) ------------------------------


class SimilarRequest(Contract):
    """Activity input: the new incident, as known at declaration."""

    incident_id: str
    service: str
    title: str
    summary: str = ""
    labels: dict[str, str] = Field(default_factory=dict)
    alert_names: list[str] = Field(default_factory=list)
    # Drills are compared with drills only, so practice never suggests itself for outages.
    drill: bool = False
    limit: int = Field(default=3, ge=1, le=20)


class SimilarityReason(Contract):
    """Why a past incident looks like this one: the shared facts, each one named."""

    same_service: bool = False
    shared_labels: dict[str, str] = Field(default_factory=dict)
    shared_alerts: list[str] = Field(default_factory=list)
    shared_words: list[str] = Field(default_factory=list)


class SimilarIncident(Contract):
    """One suggestion: a past incident, how alike it is, and what fixed it."""

    incident_id: str
    title: str
    service: str
    severity: str
    declared_at: datetime
    # 0..1: the weighted sum of the parts (see worker.knowledge.WEIGHTS).
    score: float
    reason: SimilarityReason
    explanation: str
    # Runbooks whose runs succeeded in that incident, oldest first.
    runbooks: list[str] = Field(default_factory=list)
    resolution_summary: str | None = None


class SimilarIncidents(Contract):
    """Activity output: the best suggestions first (possibly none)."""

    suggestions: list[SimilarIncident] = Field(default_factory=list)
    # How many past incidents were compared, so "none found" is honest about its basis.
    compared: int = 0
    # The timeline text, one line per suggestion, so the workflow writes it as it is.
    text: str = ""


# --- postmortems: gather, export, tracker tickets ----------------------------------------


class GatherRequest(Contract):
    """Input of ``postmortem.gather``."""

    incident_workflow_id: str = Field(min_length=1)


class GatheredRecord(Contract):
    """Output of ``postmortem.gather``: the incident's and its runs' ``state`` as JSON."""

    incident: dict[str, JsonValue]
    runs: list[dict[str, JsonValue]] = Field(default_factory=list)
    # Run id → why its state could not be read (its workflow is gone, or it did not answer).
    missing_runs: dict[str, str] = Field(default_factory=dict)


class ExportRequest(Contract):
    """Input of ``postmortem.export``: the rendered files and where they go."""

    directory: str = Field(min_length=1)
    # File name without extension; ``.md`` and ``.json`` are added.
    basename: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    markdown: str
    json_text: str


class ExportResult(Contract):
    """Output of ``postmortem.export``."""

    paths: list[str]
    # Files whose content changed (False for all: an idempotent repeat).
    changed: list[bool]


class TicketRequest(Contract):
    """Input of ``tracker.open``: the ticket for one action item."""

    # The action item id: the idempotency marker the provider finds the ticket by.
    key: str = Field(min_length=1)
    tracker: str = Field(min_length=1)
    title: str = Field(min_length=1)
    body: str = ""
    labels: list[str] = Field(default_factory=list)


class CloseTicket(Contract):
    """Input of ``tracker.close``."""

    key: str = Field(min_length=1)
    tracker: str = Field(min_length=1)
    external_id: str = Field(min_length=1)
    reason: Literal["completed", "not_planned"] = "completed"
    comment: str = ""


class TicketRef(Contract):
    """Output of ``tracker.open`` / ``tracker.close``: the external ticket."""

    provider: str
    external_id: str
    url: str = ""
    state: str = ""
    # False when an earlier attempt had already created it (an idempotent repeat).
    created: bool = False

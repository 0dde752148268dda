"""Alert ingestion: three wire formats validated and normalised to :class:`workflows.alerts.Alert`.

Runs in the API process, never in a workflow. Every function here is pure (no clock, no I/O):
the endpoint passes in the parsed body, the receive time and the integration that
authenticated it, and gets back an :class:`IngestResult` or an :class:`IngestError`.

**Alertmanager webhook** (``normalise_alertmanager``), payload version ``"4"``: the envelope
``version, groupKey, truncatedAlerts, status, receiver, groupLabels, commonLabels,
commonAnnotations, externalURL`` and ``alerts[{status, labels, annotations, startsAt, endsAt,
generatorURL, fingerprint}]``. Grafana's webhook contact point sends the same body with
``"version": "1"`` (grafana/alerting ``receivers/webhook``) plus ``orgId, title, state,
message`` and per-alert ``silenceURL, dashboardURL, panelURL, values, valueString, imageURL``;
version ``"1"`` is accepted as Grafana's, any other version is a 422. Unknown fields are ignored
at every level, so a newer sender keeps working; known fields are type-checked. Go's zero time
(``0001-01-01T00:00:00Z``, what Alertmanager sends as a firing alert's ``endsAt``) means "no
end"; an empty ``generatorURL`` or ``fingerprint`` means absent, as Go writes its zero values.
A sender fingerprint is kept; without one fireline computes Alertmanager's.

**PagerDuty Events API v2** (``normalise_pagerduty``), as PagerDuty documents ``/v2/enqueue``:

- ``routing_key`` is required and must be exactly 32 printable ASCII characters without spaces
  ("the 32 character Integration Key"), so configured fireline keys must be 32 characters too.
  It is never recorded: the endpoint maps it to an integration and a service first.
- ``event_action`` is ``trigger``, ``acknowledge`` or ``resolve``. ``dedup_key`` (1-255
  characters) is required for acknowledge and resolve. For a trigger without one PagerDuty
  generates a random UUID; fireline instead derives it from the routing key, summary, source and
  component (32 hex digits of their SHA-256), so a sender's retry of the same trigger dedupes.
- ``payload`` (``summary`` of 1-1024 characters, ``source``, ``severity`` one of critical,
  error, warning, info, and optional ``timestamp, component, group, class, custom_details``) is
  required for a trigger and checked the same way when present on the other actions.
  ``timestamp`` is ISO 8601 with an offset; PagerDuty's own example uses ``+0000``, so offsets
  without a colon are accepted here. Unknown fields are ignored, as PagerDuty does.
- Labels: ``alertname`` (``payload.class``, else the summary), ``severity``, ``source``,
  ``component``, ``group`` (when non-empty), ``service`` (the integration's, when configured) and
  ``dedup_key``. Annotations: ``summary``, ``client``, ``custom_details`` (compact JSON, cut at
  8 KiB with a visible marker), ``link_<i>``/``link_<i>_text`` and
  ``image_<i>``/``image_<i>_href``/``image_<i>_alt``. ``client_url`` is the generator URL.
- The fingerprint is that of the dedup key within the integration, the identity PagerDuty
  gives an alert, so trigger, acknowledge and resolve of one key name the same alert.
- ``acknowledge`` is not an alert state: it becomes an :class:`AckRequest`, never an alert. A
  ``resolve`` without a payload cannot know the trigger's labels; its alert is labelled
  ``alertname="PagerDutyResolve"`` plus ``dedup_key`` and ``service``, and must be delivered to
  the trigger's group by fingerprint, not by routing its labels.
- Errors answer 400 ``{"status": "invalid event", "message": "Event object is invalid",
  "errors": [...]}`` and success 202 ``{"status": "success", "message": "Event processed",
  "dedup_key": ...}``, PagerDuty's documented bodies.

**fireline JSON** (``normalise_fireline``), ``POST /v1/alerts``: one alert object or a list of
them, ``{labels, annotations?, status? (firing), starts_at? (received), ends_at?,
generator_url?, fingerprint?}``; unknown keys are rejected. A resolved alert without
``ends_at`` ended when it was received; a firing alert may not have one.

**Rules for every format.** Label and annotation values must be strings: nothing is coerced,
a number is a rejection naming the label. Every alert needs a non-empty ``alertname``. Times are
RFC 3339 with or without fractional seconds (digits past microseconds are dropped) and ``Z`` or
an offset, stored in UTC. In a batch a bad alert is rejected with its index and the reason and
the valid ones are still accepted; only a body that is unusable as a whole (not an object,
wrong version, no ``alerts``) raises :class:`IngestError`, whose ``reason`` and ``errors`` name
each field (``alerts[2].labels: Field required``).

**Authentication helpers.** :func:`verify_hmac_sha256` accepts the signature as 64 hex digits,
bare (Grafana's ``X-Grafana-Alert-Signature``) or as ``sha256=<hex>``; with a timestamp header
the signed text is ``<unix seconds>:<body>`` (Grafana's scheme) and the timestamp must be within
``tolerance`` of ``now``. :func:`bearer_matches` checks ``Authorization: Bearer <token>`` against
the token's SHA-256, as ``auth.tokens`` stores it. Both compare in constant time.

Exceptions::

    FirelineError (RuntimeError)    worker.errors
    └── IngestError                 the body is unusable as a whole; ``status`` 400 for PagerDuty
                                    events (PagerDuty's code), 422 otherwise; ``errors`` lists
                                    each ``path: problem``
    ValueError                      a caller bug: a time without an offset, an empty secret,
                                    a stored token digest that is not 64 hex digits
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)

from worker.errors import FirelineError
from workflows.alerts import (
    ALERTNAME,
    AckRequest,
    Alert,
    AlertBatch,
    AlertSource,
    AlertStatus,
    fingerprint,
)

__all__ = [
    "ALERTMANAGER_VERSIONS",
    "CUSTOM_DETAILS_LIMIT",
    "DEFAULT_SIGNATURE_TOLERANCE",
    "PAGERDUTY_RESOLVE_ALERTNAME",
    "ZERO_TIME",
    "IngestError",
    "IngestResult",
    "PagerDutyEvent",
    "PagerDutyImage",
    "PagerDutyLink",
    "PagerDutyPayload",
    "RejectedAlert",
    "bearer_matches",
    "derive_dedup_key",
    "load_json",
    "normalise_alertmanager",
    "normalise_fireline",
    "normalise_pagerduty",
    "pagerduty_accepted",
    "pagerduty_fingerprint",
    "pagerduty_invalid",
    "parse_pagerduty_event",
    "parse_time",
    "verify_hmac_sha256",
]

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""Go's zero ``time.Time``: Alertmanager's "no end time"."""
ALERTMANAGER_VERSIONS = {"4": "Alertmanager", "1": "Grafana"}
"""Webhook payload versions accepted, and who sends each."""
PAGERDUTY_ROUTING_KEY_LENGTH = 32
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_DEDUP_KEY_MAX = 255
PAGERDUTY_EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")
PAGERDUTY_RESOLVE_ALERTNAME = "PagerDutyResolve"
"""``alertname`` of a PagerDuty resolve that carried no payload to name it."""
CUSTOM_DETAILS_LIMIT = 8192
"""Characters of PagerDuty ``custom_details`` JSON kept; alerts are recorded in history."""
DEFAULT_SIGNATURE_TOLERANCE = timedelta(minutes=5)

_UNPROCESSABLE = 422
_BAD_REQUEST = 400
_TRUNCATED_MARK = "… (truncated)"
_SHOWN_INPUT = 60
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))$"
)
# PagerDuty documents "2015-07-17T08:42:58.315+0000": ISO 8601's basic-format offset.
_ISO8601_OFFSET = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):?(\d{2}))$"
)
_PRINTABLE = re.compile(r"^[!-~]+$")
_FINGERPRINT = re.compile(r"^[!-~]{1,128}$")
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_UNIX_SECONDS = re.compile(r"^[0-9]{1,12}$")
# Names that no Prometheus label can have, so this identity never equals a real label set.
_PD_INTEGRATION = "__integration__"
_PD_DEDUP_KEY = "__dedup_key__"


class IngestError(FirelineError):
    """The body cannot be used at all; ``errors`` names each bad field."""

    def __init__(self, status: int, errors: Sequence[str]) -> None:
        super().__init__("; ".join(errors))
        self.status = status
        self.errors = list(errors)

    def pagerduty_body(self) -> dict[str, Any]:
        """The 400 body PagerDuty answers an invalid event with."""
        return pagerduty_invalid(self.errors)


# --- times ----------------------------------------------------------------------------


def parse_time(text: str, *, compact_offset: bool = False) -> datetime:
    """An RFC 3339 time (``Z`` or ``±HH:MM``) in UTC; ``compact_offset`` also allows ``±HHMM``."""
    match = (_ISO8601_OFFSET if compact_offset else _RFC3339).match(text)
    if match is None:
        example = "2015-07-17T08:42:58.315+0000" if compact_offset else "2024-05-01T12:00:00Z"
        raise ValueError(f"{text!r} is not a time with an offset (e.g. {example})")
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    # Go writes nanoseconds; Python keeps microseconds, so the rest is dropped, not rounded.
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        offset = timedelta(0) if zulu else _offset(sign, off_h, off_m)
        local = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            micros,
            tzinfo=timezone(offset),
        )
        return local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValueError(f"{text!r} is not a valid time") from None


def _offset(sign: str, hours: str, minutes: str) -> timedelta:
    if int(minutes) > 59:
        raise ValueError("offset minutes out of range")
    size = timedelta(hours=int(hours), minutes=int(minutes))
    return -size if sign == "-" else size


def _time_from_text(compact_offset: bool) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            raise ValueError(f"must be a time as a string (got {_shown(value)})")
        return parse_time(value, compact_offset=compact_offset)

    return parse


WireTime = Annotated[datetime, BeforeValidator(_time_from_text(compact_offset=False))]
_PagerDutyTime = Annotated[datetime, BeforeValidator(_time_from_text(compact_offset=True))]


def _aware_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must have a UTC offset")
    return value.astimezone(UTC)


# --- field checks with messages that say what is allowed --------------------------------


def _one_of(*choices: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)} (got {value!r})")
        return value

    return AfterValidator(check)


def _length(low: int, high: int) -> AfterValidator:
    def check(value: str) -> str:
        if len(value) < low:
            raise ValueError("must not be empty")
        if len(value) > high:
            raise ValueError(f"must be at most {high} characters (got {len(value)})")
        return value

    return AfterValidator(check)


def _routing_key(value: str) -> str:
    if len(value) != PAGERDUTY_ROUTING_KEY_LENGTH:
        raise ValueError(f"must be {PAGERDUTY_ROUTING_KEY_LENGTH} characters (got {len(value)})")
    if not _PRINTABLE.match(value):
        raise ValueError("must be printable ASCII characters without spaces")
    return value


def _version(value: str) -> str:
    if value not in ALERTMANAGER_VERSIONS:
        known = " or ".join(f'"{v}" ({who})' for v, who in ALERTMANAGER_VERSIONS.items())
        raise ValueError(f"must be {known} (got {value!r})")
    return value


# --- wire models --------------------------------------------------------------------------


class _Wire(BaseModel):
    # strict: a number where a string belongs is an error, never converted.
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class _ClosedWire(_Wire):
    model_config = ConfigDict(extra="forbid")


_AlertStatusText = Annotated[str, _one_of(*AlertStatus)]


class _AlertmanagerAlert(_Wire):
    status: _AlertStatusText
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: WireTime = Field(alias="startsAt")
    ends_at: WireTime | None = Field(None, alias="endsAt")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = ""


class _AlertmanagerEnvelope(_Wire):
    version: Annotated[str, AfterValidator(_version)]
    alerts: list[Any]
    group_key: str | None = Field(None, alias="groupKey")
    truncated_alerts: int = Field(0, ge=0, alias="truncatedAlerts")
    status: _AlertStatusText | None = None
    receiver: str | None = None
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str | None = Field(None, alias="externalURL")


class _FirelineAlert(_ClosedWire):
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    status: _AlertStatusText = AlertStatus.FIRING.value
    starts_at: WireTime | None = None
    ends_at: WireTime | None = None
    generator_url: Annotated[str, _length(1, 4096)] | None = None
    fingerprint: str | None = None


class PagerDutyLink(_Wire):
    """A link attached to a PagerDuty event."""

    href: Annotated[str, _length(1, 4096)]
    text: str | None = None


class PagerDutyImage(_Wire):
    """An image attached to a PagerDuty event."""

    src: Annotated[str, _length(1, 4096)]
    href: str | None = None
    alt: str | None = None


class PagerDutyPayload(_Wire):
    """PagerDuty's ``payload`` object (the PD-CEF fields)."""

    summary: Annotated[str, _length(1, PAGERDUTY_SUMMARY_MAX)]
    source: Annotated[str, _length(1, PAGERDUTY_SUMMARY_MAX)]
    severity: Annotated[str, _one_of(*PAGERDUTY_SEVERITIES)]
    timestamp: _PagerDutyTime | None = None
    component: str | None = None
    group: str | None = None
    class_: str | None = Field(None, alias="class")
    custom_details: dict[str, Any] | None = None


class PagerDutyEvent(_Wire):
    """A validated Events API v2 event; ``routing_key`` is the sender's credential."""

    routing_key: Annotated[str, AfterValidator(_routing_key)]
    event_action: Annotated[str, _one_of(*PAGERDUTY_EVENT_ACTIONS)]
    dedup_key: Annotated[str, _length(1, PAGERDUTY_DEDUP_KEY_MAX)] | None = None
    payload: PagerDutyPayload | None = None
    links: list[PagerDutyLink] = Field(default_factory=list)
    images: list[PagerDutyImage] = Field(default_factory=list)
    client: str | None = None
    client_url: str | None = None


# --- results ------------------------------------------------------------------------------


class RejectedAlert(BaseModel):
    """An alert of a batch that was not accepted, by position, and why."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    index: int
    reason: str


class IngestResult(BaseModel):
    """What one delivery yielded: alerts accepted, alerts rejected, acknowledgements."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: AlertSource
    integration: str | None
    received_at: datetime
    accepted: list[Alert] = Field(default_factory=list)
    rejected: list[RejectedAlert] = Field(default_factory=list)
    acks: list[AckRequest] = Field(default_factory=list)
    # Alertmanager envelope facts, for the record and diagnostics.
    group_key: str | None = None
    group_labels: dict[str, str] = Field(default_factory=dict)
    receiver: str | None = None
    external_url: str | None = None
    truncated: int = 0
    # PagerDuty: the dedup key the event applied to, given or derived.
    dedup_key: str | None = None

    def batch(self) -> AlertBatch:
        """The accepted alerts as the batch an alert workflow records."""
        return AlertBatch(
            alerts=self.accepted,
            received_at=self.received_at,
            source=self.source,
            integration=self.integration,
            group_key=self.group_key,
        )

    def pagerduty_response(self) -> dict[str, str]:
        """PagerDuty's 202 body for the event this result came from."""
        if self.dedup_key is None:
            raise ValueError("not a PagerDuty result: no dedup_key")
        return pagerduty_accepted(self.dedup_key)

    def response_body(self) -> dict[str, Any]:
        """A summary for the sender: counts, and each rejection with its index and reason."""
        return {
            "accepted": len(self.accepted),
            "rejected": [r.model_dump() for r in self.rejected],
            "truncated": self.truncated,
        }


def pagerduty_accepted(dedup_key: str) -> dict[str, str]:
    """PagerDuty's 202 response body."""
    return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}


def pagerduty_invalid(errors: Sequence[str]) -> dict[str, Any]:
    """PagerDuty's 400 response body."""
    return {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}


# --- JSON ---------------------------------------------------------------------------------


def load_json(raw: bytes, *, status: int = _UNPROCESSABLE) -> Any:
    """Parse a request body; not UTF-8 JSON (``NaN`` included) is an :class:`IngestError`."""

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        return json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
    except UnicodeDecodeError:
        raise IngestError(status, ["body: not UTF-8 text"]) from None
    except ValueError as exc:
        raise IngestError(status, [f"body: malformed JSON: {exc}"]) from None


# --- Alertmanager / Grafana -----------------------------------------------------------------


def normalise_alertmanager(
    body: Any, *, integration: str | None, received_at: datetime
) -> IngestResult:
    """An Alertmanager (v4) or Grafana (v1) webhook body as normalised alerts."""
    received_at = _aware_utc(received_at, "received_at")
    if not isinstance(body, dict):
        raise IngestError(_UNPROCESSABLE, [f"body: must be a JSON object (got {_kind(body)})"])
    try:
        envelope = _AlertmanagerEnvelope.model_validate(body)
    except ValidationError as exc:
        raise IngestError(_UNPROCESSABLE, _describe(exc, "")) from None
    accepted: list[Alert] = []
    rejected: list[RejectedAlert] = []
    for index, raw in enumerate(envelope.alerts):
        outcome = _alertmanager_alert(raw, f"alerts[{index}]", integration)
        if isinstance(outcome, Alert):
            accepted.append(outcome)
        else:
            rejected.append(RejectedAlert(index=index, reason="; ".join(outcome)))
    return IngestResult(
        source=AlertSource.ALERTMANAGER,
        integration=integration,
        received_at=received_at,
        accepted=accepted,
        rejected=rejected,
        group_key=envelope.group_key,
        group_labels=envelope.group_labels,
        receiver=envelope.receiver,
        external_url=envelope.external_url,
        truncated=envelope.truncated_alerts,
    )


def _alertmanager_alert(raw: Any, where: str, integration: str | None) -> Alert | list[str]:
    if not isinstance(raw, dict):
        return [f"{where}: must be an alert object (got {_kind(raw)})"]
    try:
        wire = _AlertmanagerAlert.model_validate(raw)
    except ValidationError as exc:
        return _describe(exc, where)
    ends_at = None if wire.ends_at == ZERO_TIME else wire.ends_at
    draft = _Draft(
        status=AlertStatus(wire.status),
        labels=wire.labels,
        annotations=wire.annotations,
        starts_at=wire.starts_at,
        ends_at=ends_at,
        generator_url=wire.generator_url or None,
        fingerprint=wire.fingerprint or None,
    )
    problems = _draft_problems(draft, where, _AM_NAMES)
    if problems:
        return problems
    return _finish(draft, where, AlertSource.ALERTMANAGER, integration)


# --- fireline JSON --------------------------------------------------------------------------


def normalise_fireline(
    body: Any, *, integration: str | None, received_at: datetime
) -> IngestResult:
    """fireline's own ``/v1/alerts`` body (one alert or a list) as normalised alerts."""
    received_at = _aware_utc(received_at, "received_at")
    if isinstance(body, dict):
        outcome = _fireline_alert(body, "", integration, received_at)
        if not isinstance(outcome, Alert):
            raise IngestError(_UNPROCESSABLE, outcome)
        accepted = [outcome]
        rejected: list[RejectedAlert] = []
    elif isinstance(body, list):
        accepted, rejected = [], []
        for index, raw in enumerate(body):
            item = _fireline_alert(raw, f"[{index}]", integration, received_at)
            if isinstance(item, Alert):
                accepted.append(item)
            else:
                rejected.append(RejectedAlert(index=index, reason="; ".join(item)))
    else:
        raise IngestError(
            _UNPROCESSABLE,
            [f"body: must be an alert object or a list of them (got {_kind(body)})"],
        )
    return IngestResult(
        source=AlertSource.FIRELINE,
        integration=integration,
        received_at=received_at,
        accepted=accepted,
        rejected=rejected,
    )


def _fireline_alert(
    raw: Any, where: str, integration: str | None, received_at: datetime
) -> Alert | list[str]:
    if not isinstance(raw, dict):
        return [f"{where or 'body'}: must be an alert object (got {_kind(raw)})"]
    try:
        wire = _FirelineAlert.model_validate(raw)
    except ValidationError as exc:
        return _describe(exc, where)
    status = AlertStatus(wire.status)
    ends_at = None if wire.ends_at == ZERO_TIME else wire.ends_at
    problems: list[str] = []
    if wire.starts_at is not None and ends_at is not None and ends_at < wire.starts_at:
        problems.append(f"{_join(where, 'ends_at')}: must not be before starts_at")
    if status is AlertStatus.RESOLVED and ends_at is None:
        # Resolved with no end given: it ended when fireline heard so.
        ends_at = received_at
    draft = _Draft(
        status=status,
        labels=wire.labels,
        annotations=wire.annotations,
        starts_at=received_at if wire.starts_at is None else wire.starts_at,
        ends_at=ends_at,
        generator_url=wire.generator_url,
        fingerprint=wire.fingerprint,
    )
    problems += _draft_problems(draft, where, _FIRELINE_NAMES)
    if problems:
        return problems
    return _finish(draft, where, AlertSource.FIRELINE, integration)


# --- shared alert checks --------------------------------------------------------------------


@dataclass(frozen=True)
class _Draft:
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None
    generator_url: str | None
    fingerprint: str | None


@dataclass(frozen=True)
class _Names:
    """How a wire format spells the fields a problem is reported against."""

    starts_at: str
    ends_at: str


_AM_NAMES = _Names(starts_at="startsAt", ends_at="endsAt")
_FIRELINE_NAMES = _Names(starts_at="starts_at", ends_at="ends_at")


def _draft_problems(draft: _Draft, where: str, names: _Names) -> list[str]:
    problems = _label_problems(draft.labels, _join(where, "labels"))
    if draft.starts_at == ZERO_TIME:
        problems.append(f"{_join(where, names.starts_at)}: must be set (got the zero time)")
    if draft.status is AlertStatus.FIRING and draft.ends_at is not None:
        problems.append(
            f"{_join(where, names.ends_at)}: a firing alert has no end time "
            f"(send 0001-01-01T00:00:00Z or leave it out; got {draft.ends_at.isoformat()})"
        )
    if draft.status is AlertStatus.RESOLVED and draft.ends_at is None:
        problems.append(f"{_join(where, names.ends_at)}: a resolved alert needs an end time")
    if draft.fingerprint is not None and not _FINGERPRINT.match(draft.fingerprint):
        problems.append(
            f"{_join(where, 'fingerprint')}: must be 1-128 printable ASCII characters "
            "without spaces"
        )
    return problems


def _label_problems(labels: Mapping[str, str], where: str) -> list[str]:
    problems = []
    if "" in labels:
        problems.append(f"{where}: label names must not be empty")
    if ALERTNAME not in labels:
        problems.append(f"{where}.{ALERTNAME}: Field required")
    elif not labels[ALERTNAME]:
        problems.append(f"{where}.{ALERTNAME}: must not be empty")
    return problems


def _finish(
    draft: _Draft, where: str, source: AlertSource, integration: str | None
) -> Alert | list[str]:
    try:
        return Alert(
            fingerprint=draft.fingerprint or fingerprint(draft.labels),
            status=draft.status,
            labels=draft.labels,
            annotations=draft.annotations,
            starts_at=draft.starts_at,
            ends_at=draft.ends_at,
            generator_url=draft.generator_url,
            source=source,
            integration=integration,
        )
    except ValidationError as exc:
        # The checks above mirror Alert's invariants; this keeps a gap a 4xx, never a 500.
        return _describe(exc, where)


# --- PagerDuty Events API v2 ----------------------------------------------------------------


def parse_pagerduty_event(body: Any) -> PagerDutyEvent:
    """Validate an Events API v2 body; problems are a 400 :class:`IngestError`."""
    if not isinstance(body, dict):
        raise IngestError(_BAD_REQUEST, [f"body: must be a JSON object (got {_kind(body)})"])
    try:
        event = PagerDutyEvent.model_validate(body)
    except ValidationError as exc:
        raise IngestError(_BAD_REQUEST, _describe(exc, "")) from None
    problems = []
    if event.event_action == "trigger" and event.payload is None:
        problems.append("payload: Field required for a trigger event")
    if event.event_action != "trigger" and event.dedup_key is None:
        problems.append(f"dedup_key: Field required for an {event.event_action} event")
    if problems:
        raise IngestError(_BAD_REQUEST, problems)
    return event


def derive_dedup_key(event: PagerDutyEvent) -> str:
    """The dedup key of a trigger sent without one: same routing key, summary, source, component.

    PagerDuty would generate a random one; deriving it means a sender's retry of the same
    trigger lands on the same alert instead of opening a second one.
    """
    if event.payload is None:
        raise ValueError("only an event with a payload has a derivable dedup key")
    parts = (
        event.routing_key,
        event.payload.summary,
        event.payload.source,
        event.payload.component or "",
    )
    # NUL cannot appear in a JSON string unescaped; joining on it keeps the parts apart.
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]


def pagerduty_fingerprint(dedup_key: str, integration: str | None) -> str:
    """The fingerprint of the alert a dedup key names within an integration."""
    return fingerprint({_PD_INTEGRATION: integration or "", _PD_DEDUP_KEY: dedup_key})


def normalise_pagerduty(
    body: Any, *, integration: str | None, service: str | None, received_at: datetime
) -> IngestResult:
    """An Events API v2 body (or a parsed :class:`PagerDutyEvent`) as an alert or an ack."""
    received_at = _aware_utc(received_at, "received_at")
    event = body if isinstance(body, PagerDutyEvent) else parse_pagerduty_event(body)
    dedup_key = event.dedup_key or derive_dedup_key(event)
    identity = pagerduty_fingerprint(dedup_key, integration)
    accepted: list[Alert] = []
    acks: list[AckRequest] = []
    if event.event_action == "acknowledge":
        acks.append(
            AckRequest(
                fingerprint=identity,
                dedup_key=dedup_key,
                integration=integration,
                received_at=received_at,
            )
        )
    else:
        accepted.append(
            _pagerduty_alert(event, dedup_key, identity, integration, service, received_at)
        )
    return IngestResult(
        source=AlertSource.PAGERDUTY_EVENTS,
        integration=integration,
        received_at=received_at,
        accepted=accepted,
        acks=acks,
        dedup_key=dedup_key,
    )


def _pagerduty_alert(
    event: PagerDutyEvent,
    dedup_key: str,
    identity: str,
    integration: str | None,
    service: str | None,
    received_at: datetime,
) -> Alert:
    payload = event.payload
    at = payload.timestamp if payload is not None and payload.timestamp else received_at
    resolved = event.event_action == "resolve"
    return Alert(
        fingerprint=identity,
        status=AlertStatus.RESOLVED if resolved else AlertStatus.FIRING,
        labels=_pagerduty_labels(payload, dedup_key, service),
        annotations=_pagerduty_annotations(event),
        # A resolve knows only when it ended; the alert workflow keeps the trigger's start.
        starts_at=at,
        ends_at=at if resolved else None,
        generator_url=event.client_url or None,
        source=AlertSource.PAGERDUTY_EVENTS,
        integration=integration,
    )


def _pagerduty_labels(
    payload: PagerDutyPayload | None, dedup_key: str, service: str | None
) -> dict[str, str]:
    if payload is None:
        labels = {ALERTNAME: PAGERDUTY_RESOLVE_ALERTNAME}
    else:
        labels = {
            ALERTNAME: payload.class_ or payload.summary,
            "severity": payload.severity,
            "source": payload.source,
        }
        # An empty value is no label, as in Prometheus; leaving it out changes no routing.
        labels.update({name: value for name, value in _optional_labels(payload).items() if value})
    if service:
        labels["service"] = service
    labels["dedup_key"] = dedup_key
    return labels


def _optional_labels(payload: PagerDutyPayload) -> dict[str, str | None]:
    return {"component": payload.component, "group": payload.group}


def _pagerduty_annotations(event: PagerDutyEvent) -> dict[str, str]:
    notes: dict[str, str] = {}
    if event.payload is not None:
        notes["summary"] = event.payload.summary
        if event.payload.custom_details:
            notes["custom_details"] = _compact_json(event.payload.custom_details)
    if event.client:
        notes["client"] = event.client
    for i, link in enumerate(event.links):
        notes[f"link_{i}"] = link.href
        if link.text:
            notes[f"link_{i}_text"] = link.text
    for i, image in enumerate(event.images):
        notes[f"image_{i}"] = image.src
        if image.href:
            notes[f"image_{i}_href"] = image.href
        if image.alt:
            notes[f"image_{i}_alt"] = image.alt
    return notes


def _compact_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) <= CUSTOM_DETAILS_LIMIT:
        return text
    return text[: CUSTOM_DETAILS_LIMIT - len(_TRUNCATED_MARK)] + _TRUNCATED_MARK


# --- authentication -------------------------------------------------------------------------


def verify_hmac_sha256(
    secret: bytes,
    body: bytes,
    signature_header: str | None,
    *,
    timestamp_header: str | None = None,
    now: datetime | None = None,
    tolerance: timedelta = DEFAULT_SIGNATURE_TOLERANCE,
) -> bool:
    """Whether ``signature_header`` is the HMAC-SHA256 of the body (and timestamp) under secret.

    The signature is 64 hex digits, bare or as ``sha256=<hex>``. With ``timestamp_header``
    (Unix seconds) the signed text is ``<timestamp>:<body>`` and the timestamp must lie
    within ``tolerance`` of ``now``, so a captured request cannot be replayed later.
    """
    if not secret:
        raise ValueError("an empty HMAC secret would accept forged signatures")
    given = _signature_hex(signature_header)
    if given is None:
        return False
    message = body
    if timestamp_header is not None:
        if now is None:
            raise ValueError("now is required to check a signature timestamp")
        stamp = timestamp_header.strip()
        if not _fresh(stamp, _aware_utc(now, "now"), tolerance):
            return False
        message = stamp.encode() + b":" + body
    expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, given)


def _signature_hex(header: str | None) -> str | None:
    if header is None:
        return None
    text = header.strip()
    if text[:7].lower() == "sha256=":
        text = text[7:]
    return text.lower() if _HEX64.match(text) else None


def _fresh(stamp: str, now: datetime, tolerance: timedelta) -> bool:
    if not _UNIX_SECONDS.match(stamp):
        return False
    sent = datetime.fromtimestamp(int(stamp), tz=UTC)
    return abs(now - sent) <= tolerance


def bearer_matches(expected_sha256_hex: str, header: str | None) -> bool:
    """Whether ``Authorization: Bearer <token>`` carries the token whose SHA-256 is expected."""
    if not _HEX64.match(expected_sha256_hex):
        raise ValueError("expected_sha256_hex must be 64 hex digits")
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return False
    digest = hashlib.sha256(token.encode()).hexdigest()
    return hmac.compare_digest(digest, expected_sha256_hex.lower())


# --- error text -----------------------------------------------------------------------------


def _describe(exc: ValidationError, where: str) -> list[str]:
    """One ``path: problem`` per error, paths as JSON spells them (``alerts[2].labels``)."""
    lines = []
    for error in exc.errors():
        path = _loc_path(where, error["loc"])
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"].endswith("_type"):
                message += f" (got {_shown(error['input'])})"
        lines.append(f"{path}: {message}" if path else message)
    return lines


def _loc_path(where: str, loc: Iterable[int | str]) -> str:
    path = where
    for part in loc:
        path = f"{path}[{part}]" if isinstance(part, int) else _join(path, part)
    return path


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= _SHOWN_INPUT else text[: _SHOWN_INPUT - 1] + "…"

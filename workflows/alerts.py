"""The normalised alert: what every ingest format becomes and what alert workflows record.

Alertmanager and Grafana webhooks, PagerDuty Events API v2 events and fireline's own JSON are
parsed in the API process (``worker/ingest.py``) and arrive here as :class:`Alert`. These models
are written into Temporal history, so they stay small, reject unknown fields, and follow the
contract rules in ``workflows/contracts.py``: add fields with defaults, never rename or remove.

Invariants an :class:`Alert` keeps (checked on construction, so also on replay):

- ``labels`` has a non-empty ``alertname``, and no label name is empty;
- ``starts_at`` and ``ends_at`` carry a UTC offset and are stored in UTC;
- a firing alert has no ``ends_at``; a resolved one has one. Alertmanager never shows a firing
  alert's end time (it sends Go's zero time, ``0001-01-01T00:00:00Z``), so neither does fireline;
- ``fingerprint`` is 1-128 printable ASCII characters without spaces.

Fingerprints (:func:`fingerprint`) use Alertmanager's own algorithm, the label-set fingerprint
of ``prometheus/common`` ``model.LabelSet.Fingerprint``: 64-bit FNV-1a over the labels sorted by
name, each written as ``name 0xFF value 0xFF`` in UTF-8, rendered as 16 lowercase hex digits. So
an alert posted to ``/v1/alerts`` gets the same fingerprint Alertmanager gives the same label
set, and an empty label set hashes to the FNV offset basis ``cbf29ce484222325``. When a sender
supplies its own fingerprint (Alertmanager, Grafana) the ingest layer keeps it.

Pure: stdlib and pydantic only, no clock and no I/O; imported inside the workflow sandbox.

Exceptions::

    pydantic.ValidationError (ValueError)    a model's field or invariant is broken
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ALERTNAME",
    "AckRequest",
    "Alert",
    "AlertBatch",
    "AlertSource",
    "AlertStatus",
    "dedup_batch",
    "fingerprint",
]

ALERTNAME = "alertname"
"""The label every alert carries: the name routing, grouping and titles use."""

_FNV_OFFSET_BASIS = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_U64 = 0xFFFFFFFFFFFFFFFF
# Prometheus separates names and values with a byte that never occurs in valid UTF-8.
_SEPARATOR = b"\xff"
_SUMMARY_ANNOTATIONS = ("summary", "description", "message")


class AlertStatus(StrEnum):
    """Whether the problem an alert describes is happening now."""

    FIRING = "firing"
    RESOLVED = "resolved"


class AlertSource(StrEnum):
    """The wire format an alert arrived in."""

    ALERTMANAGER = "alertmanager"
    PAGERDUTY_EVENTS = "pagerduty_events"
    FIRELINE = "fireline"


def _utc(value: datetime) -> datetime:
    # A naive time means nothing to a service spread over time zones; refuse to guess.
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("must have a UTC offset")
    return value.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
"""A time with an offset, stored in UTC."""


class _Recorded(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Alert(_Recorded):
    """One alert, normalised from any source; recorded in history, so kept small."""

    # Stable identity of the alert, the dedup key across deliveries.
    fingerprint: str = Field(pattern=r"^[!-~]{1,128}$")
    status: AlertStatus
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: UtcDatetime
    ends_at: UtcDatetime | None = None
    generator_url: str | None = None
    source: AlertSource
    # Which configured integration (token, routing key, HMAC secret) delivered it.
    integration: str | None = None

    @model_validator(mode="after")
    def _invariants(self) -> Self:
        if not self.labels.get(ALERTNAME):
            raise ValueError(f"labels must include a non-empty {ALERTNAME}")
        if "" in self.labels:
            raise ValueError("label names must not be empty")
        if self.status is AlertStatus.FIRING and self.ends_at is not None:
            raise ValueError("a firing alert has no ends_at")
        if self.status is AlertStatus.RESOLVED and self.ends_at is None:
            raise ValueError("a resolved alert needs ends_at")
        return self

    @property
    def alertname(self) -> str:
        """The ``alertname`` label."""
        return self.labels[ALERTNAME]

    def summary(self) -> str:
        """One line for people: the summary, description or message annotation, else the name."""
        for name in _SUMMARY_ANNOTATIONS:
            text = self.annotations.get(name, "").strip()
            if text:
                return text
        return self.alertname


class AckRequest(_Recorded):
    """A PagerDuty ``acknowledge`` event: not an alert state, a request to ack its incident."""

    # The fingerprint of the alert the dedup key names, so the ack finds the same alert.
    fingerprint: str = Field(pattern=r"^[!-~]{1,128}$")
    dedup_key: str = Field(min_length=1, max_length=255)
    source: AlertSource = AlertSource.PAGERDUTY_EVENTS
    integration: str | None = None
    received_at: UtcDatetime


class AlertBatch(_Recorded):
    """The alerts one delivery carried, as an alert workflow receives them."""

    alerts: list[Alert]
    received_at: UtcDatetime
    source: AlertSource
    integration: str | None = None
    # The sender's own group key (Alertmanager's ``groupKey``), kept for the record only.
    group_key: str | None = None


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's label-set fingerprint: FNV-1a 64 over sorted labels, 16 hex digits."""
    digest = _FNV_OFFSET_BASIS
    # Python orders str by code point, which for UTF-8 is the byte order Go's sort uses.
    for name in sorted(labels):
        for chunk in (name.encode(), _SEPARATOR, labels[name].encode(), _SEPARATOR):
            for byte in chunk:
                digest = ((digest ^ byte) * _FNV_PRIME) & _U64
    return f"{digest:016x}"


def dedup_batch(alerts: Iterable[Alert]) -> list[Alert]:
    """One alert per fingerprint, the latest state of each, in order of first appearance.

    "Latest" compares each alert's state time: ``ends_at`` when resolved, ``starts_at`` when
    firing. At the same instant resolved beats firing, because a sender that reports both
    has seen the end of the episode that started then; at equal time and status the later
    alert in the batch wins, as a sender lists its newest knowledge last. Alerts are picked,
    never merged.
    """
    chosen: dict[str, tuple[tuple[datetime, int, int], Alert]] = {}
    for position, alert in enumerate(alerts):
        rank = (_state_time(alert), _status_rank(alert.status), position)
        current = chosen.get(alert.fingerprint)
        if current is None or rank > current[0]:
            # Replacing keeps the dict's first-insertion order for this fingerprint.
            chosen[alert.fingerprint] = (rank, alert)
    return [alert for _, alert in chosen.values()]


def _state_time(alert: Alert) -> datetime:
    if alert.status is AlertStatus.RESOLVED and alert.ends_at is not None:
        return alert.ends_at
    return alert.starts_at


def _status_rank(status: AlertStatus) -> int:
    return 1 if status is AlertStatus.RESOLVED else 0

"""Noise controls: silences, inhibition rules and maintenance windows, evaluated purely.

Nothing here drops an alert. Each check returns a :class:`SuppressionReason` (or None), so the
caller records the alert *and* why nobody was paged for it.

Inhibition (Alertmanager ``inhibit/inhibit.go``): a target alert is inhibited when, for some
rule, it matches ``target_matchers`` and some *firing* alert matches ``source_matchers`` and
carries the same value as the target for every label in ``equal``. A missing label counts as the
empty string, so a label missing from both alerts is equal. When the target also matches
``source_matchers``, every source alert that also matches ``target_matchers`` is disregarded:
an alert that is both cannot inhibit itself, nor a peer that is both.

Silences (Alertmanager ``silence/silence.go``): a silence is *pending* before ``starts_at``,
*active* from ``starts_at`` to ``ends_at`` inclusive, and *expired* after ``ends_at``; only
active silences silence. Expiring one early records ``expired_at``, and the silence is expired
from that instant (Alertmanager rewrites the end time instead; fireline keeps what was asked
for and when it was withdrawn). A silence needs a matcher, and at least one matcher must not
match the empty string, with Alertmanager's exact rule: ``=""`` and a regex that matches ``""``
count as matching it, ``!=`` and ``!~`` never do. A new silence that starts in the past starts
now, its end must be after its start and in the future. Expired silences are kept
:data:`DEFAULT_RETENTION` (Alertmanager's ``--data.retention`` default, 120h) after they end.

Maintenance windows: a window mutes the alerts its matchers select while the instant is in any
of its named :class:`~workflows.time_intervals.TimeInterval`\\ s, judged in each interval's own
time zone.

:func:`suppression` applies all three with a fixed precedence: maintenance window, then silence,
then inhibition. A planned window and a person's silence are deliberate and carry their own
explanation; inhibition is derived from other alerts, so it is reported only when nothing
deliberate applies. (Alertmanager's pipeline checks inhibition first, but only reports a bool.)

Pure: stdlib, pydantic and ``workflows.*`` pure modules; no clock (``now`` is a parameter) and no
I/O. Workflows import it inside ``workflow.unsafe.imports_passed_through()`` because it imports
``workflows.time_intervals`` (see that module on ZoneInfo in the sandbox).

Exceptions::

    SilenceRejected (ValueError)              build_silence: the request cannot become a silence
    pydantic.ValidationError (ValueError)     a model's field or invariant is broken
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workflows.alerts import Alert, AlertStatus, UtcDatetime
from workflows.durations import Duration
from workflows.matchers import (
    Matcher,
    MatcherSyntaxError,
    MatchType,
    format_labels,
    match_all,
    parse_matchers,
)
from workflows.time_intervals import TimeInterval, contains

__all__ = [
    "DEFAULT_RETENTION",
    "AddSilence",
    "ExpireSilence",
    "InhibitRule",
    "MaintenanceWindow",
    "Silence",
    "SilenceRejected",
    "SilenceState",
    "SilenceStoreInput",
    "SuppressionKind",
    "SuppressionReason",
    "build_silence",
    "check_interval_names",
    "check_names",
    "in_maintenance",
    "inhibition",
    "is_inhibit_source",
    "next_transition",
    "prune_silences",
    "silence_problems",
    "silenced_by",
    "sort_silences",
    "suppression",
]

DEFAULT_RETENTION = timedelta(hours=120)
"""How long an ended silence is kept: Alertmanager's ``--data.retention`` default."""

_SHORT_ID = 8
_TICK = timedelta(seconds=1)
_STAND_IN = {"name": "_", "type": "=", "value": ""}
_MAX_COMMENT = 80


class SilenceRejected(ValueError):
    """A silence request that cannot become a silence; the message says why."""


class _Recorded(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _matcher_items(value: Any) -> Any:
    # Config and CLI write matchers as text, and one item may hold several ("a=b, c=d");
    # history stores them as objects, which pass through untouched.
    if not isinstance(value, list):
        return value
    parsed: list[list[Matcher] | None] = []
    for item in value:
        try:
            # An item with no matcher at all ("") is an error too, reported by Matcher.
            parsed.append((parse_matchers(item) or None) if isinstance(item, str) else None)
        except MatcherSyntaxError:
            parsed.append(None)
    if any(p is None and isinstance(item, str) for p, item in zip(parsed, value, strict=True)):
        # Keep one entry per item so Matcher reports the bad text at the author's index;
        # validation fails anyway, so the stand-ins for good items are never used.
        return [item if p is None else _STAND_IN for p, item in zip(parsed, value, strict=True)]
    return [m for p, item in zip(parsed, value, strict=True) for m in (p or [item])]


# --- results ------------------------------------------------------------------------------


class SuppressionKind(StrEnum):
    """Why an alert was suppressed."""

    SILENCED = "silenced"
    INHIBITED = "inhibited"
    MAINTENANCE = "maintenance"


class SuppressionReason(_Recorded):
    """Why an alert was recorded but not acted on; recorded in history."""

    kind: SuppressionKind
    # The silence id, the inhibit rule's name (or ``inhibit_rules[i]``), or the window name.
    ref: str = Field(min_length=1)
    # One line for the timeline.
    text: str = Field(min_length=1)
    # Inhibition only: the fingerprint of the firing alert that inhibits.
    source: str | None = None
    # Silences only: when the suppression ends, so the caller can look again then.
    until: UtcDatetime | None = None


# --- inhibition ---------------------------------------------------------------------------


class InhibitRule(_Recorded):
    """Mute alerts matching ``target_matchers`` while a matching source alert fires."""

    source_matchers: list[Matcher] = Field(default_factory=list)
    target_matchers: list[Matcher]
    # Labels whose values must be the same on source and target; missing counts as "".
    equal: list[str] = Field(default_factory=list)
    name: str | None = Field(None, min_length=1)

    @field_validator("source_matchers", "target_matchers", mode="before")
    @classmethod
    def _parse_text(cls, value: Any) -> Any:
        return _matcher_items(value)

    @field_validator("target_matchers")
    @classmethod
    def _target_required(cls, value: list[Matcher]) -> list[Matcher]:
        # Alertmanager accepts an empty target, which mutes every alert a source fires beside.
        if not value:
            raise ValueError(
                "at least one target matcher is required: an empty list would inhibit every alert"
            )
        return value

    @field_validator("equal")
    @classmethod
    def _label_names(cls, value: list[str]) -> list[str]:
        for index, label in enumerate(value):
            if not label:
                raise ValueError(f"equal[{index}] is empty: name a label")
        return value


def is_inhibit_source(alert: Alert, rules: Iterable[InhibitRule]) -> bool:
    """Whether ``alert`` is firing and can inhibit others under some rule."""
    return alert.status is AlertStatus.FIRING and any(
        match_all(rule.source_matchers, alert.labels) for rule in rules
    )


def inhibition(
    alert: Alert, firing: Iterable[Alert], rules: Sequence[InhibitRule]
) -> SuppressionReason | None:
    """The first rule (in order) under which a firing source alert inhibits ``alert``."""
    sources = [a for a in firing if a.status is AlertStatus.FIRING]
    for index, rule in enumerate(rules):
        if not match_all(rule.target_matchers, alert.labels):
            continue
        two_sided = match_all(rule.source_matchers, alert.labels)
        for source in sources:
            if _inhibits(rule, source, alert, two_sided=two_sided):
                return _inhibited_reason(rule, index, source)
    return None


def _inhibits(rule: InhibitRule, source: Alert, target: Alert, *, two_sided: bool) -> bool:
    if source.fingerprint == target.fingerprint:
        return False
    if not match_all(rule.source_matchers, source.labels):
        return False
    if any(source.labels.get(n, "") != target.labels.get(n, "") for n in rule.equal):
        return False
    return not (two_sided and match_all(rule.target_matchers, source.labels))


def _inhibited_reason(rule: InhibitRule, index: int, source: Alert) -> SuppressionReason:
    ref = rule.name or f"inhibit_rules[{index}]"
    which = f"rule '{rule.name}'" if rule.name else ref
    # The equal labels are what ties the two alerts together, so they are the ones shown.
    shared = {n: source.labels.get(n, "") for n in rule.equal}
    shown = source.alertname + (format_labels(shared) if shared else "")
    return SuppressionReason(
        kind=SuppressionKind.INHIBITED,
        ref=ref,
        text=f"inhibited by {shown} ({which})",
        source=source.fingerprint,
    )


# --- silences -----------------------------------------------------------------------------


class SilenceState(StrEnum):
    """Alertmanager's silence states."""

    PENDING = "pending"
    ACTIVE = "active"
    EXPIRED = "expired"


def silence_problems(
    matchers: Sequence[Matcher], starts_at: datetime, ends_at: datetime
) -> list[str]:
    """What makes these matchers and times an invalid silence; empty when valid."""
    problems: list[str] = []
    if not matchers:
        problems.append("at least one matcher required")
    elif all(_matches_empty(m) for m in matchers):
        shown = ", ".join(str(m) for m in matchers)
        problems.append(
            "at least one matcher must not match the empty string: "
            f"{{{shown}}} would also silence every alert without those labels"
        )
    if ends_at <= starts_at:
        problems.append(
            f"ends_at {ends_at.isoformat()} must be after starts_at {starts_at.isoformat()}"
        )
    return problems


def _matches_empty(matcher: Matcher) -> bool:
    # Alertmanager's rule: only = and =~ can count; != and !~ never do, even when they
    # would match a missing label.
    if matcher.type not in (MatchType.EQUAL, MatchType.REGEX):
        return False
    return matcher.matches({})


class Silence(_Recorded):
    """A person's decision to mute matching alerts for a while; recorded in history."""

    id: str = Field(min_length=1)
    matchers: list[Matcher]
    starts_at: UtcDatetime
    ends_at: UtcDatetime
    created_by: str = Field(min_length=1)
    comment: str = Field(min_length=1)
    created_at: UtcDatetime
    # Set when someone ends the silence early; it is expired from this instant.
    expired_at: UtcDatetime | None = None
    expired_by: str | None = None

    @field_validator("matchers", mode="before")
    @classmethod
    def _parse_text(cls, value: Any) -> Any:
        return _matcher_items(value)

    @model_validator(mode="after")
    def _invariants(self) -> Self:
        problems = silence_problems(self.matchers, self.starts_at, self.ends_at)
        if problems:
            raise ValueError("; ".join(problems))
        if (self.expired_at is None) != (self.expired_by is None):
            raise ValueError("expired_at and expired_by are set together")
        return self

    @property
    def ended_at(self) -> datetime:
        """When the silence stops (or stopped) silencing: its end, or when it was expired."""
        if self.expired_at is not None and self.expired_at < self.ends_at:
            return self.expired_at
        return self.ends_at

    def state(self, now: datetime) -> SilenceState:
        """Pending before ``starts_at``, active until ``ends_at`` inclusive, then expired."""
        if self.expired_at is not None and now >= self.expired_at:
            return SilenceState.EXPIRED
        if now < self.starts_at:
            return SilenceState.PENDING
        if now > self.ends_at:
            return SilenceState.EXPIRED
        return SilenceState.ACTIVE

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every matcher matches ``labels``."""
        return match_all(self.matchers, labels)


def silenced_by(
    alert: Alert, silences: Iterable[Silence], now: datetime
) -> SuppressionReason | None:
    """The active silence matching ``alert`` that lasts longest, or None."""
    active = [
        s for s in silences if s.state(now) is SilenceState.ACTIVE and s.matches(alert.labels)
    ]
    if not active:
        return None
    # The longest-lasting one says how long the alert stays quiet; the id breaks ties.
    chosen = max(active, key=lambda s: (s.ended_at, s.id))
    return SuppressionReason(
        kind=SuppressionKind.SILENCED,
        ref=chosen.id,
        text=_silence_text(chosen, now),
        until=chosen.ended_at,
    )


def _silence_text(silence: Silence, now: datetime) -> str:
    short = silence.id if len(silence.id) <= _SHORT_ID else silence.id[:_SHORT_ID] + "…"
    comment = silence.comment.strip().replace("\n", " ")
    if len(comment) > _MAX_COMMENT:
        comment = comment[: _MAX_COMMENT - 1] + "…"
    until = _clock_text(silence.ended_at, now)
    return f'silenced by {short} ({silence.created_by}: "{comment}", until {until})'


def _clock_text(at: datetime, now: datetime) -> str:
    # Today needs only the time; any other day needs the date too.
    same_day = at.date() == now.astimezone(at.tzinfo).date()
    return at.strftime("%H:%M UTC" if same_day else "%Y-%m-%d %H:%M UTC")


def sort_silences(silences: Iterable[Silence], now: datetime) -> list[Silence]:
    """Alertmanager's listing order: active, pending, then expired, most pressing first."""

    def key(s: Silence) -> tuple[int, float]:
        state = s.state(now)
        if state is SilenceState.ACTIVE:
            return 0, s.ended_at.timestamp()
        if state is SilenceState.PENDING:
            return 1, s.starts_at.timestamp()
        return 2, -s.ended_at.timestamp()

    return sorted(silences, key=key)


def next_transition(silences: Iterable[Silence], now: datetime) -> datetime | None:
    """The first instant after ``now`` at which one of ``silences`` changes state, if any."""
    upcoming = [t for s in silences if (t := _next_change(s, now)) is not None]
    return min(upcoming, default=None)


def _next_change(silence: Silence, now: datetime) -> datetime | None:
    state = silence.state(now)
    if state is SilenceState.PENDING:
        return silence.starts_at
    if state is SilenceState.ACTIVE:
        # Active until ends_at inclusive, so the first instant that reads expired is later;
        # a second later keeps clear of timestamp rounding. Expiry takes effect at once.
        end = silence.ends_at + _TICK
        return end if silence.expired_at is None else min(end, silence.expired_at)
    return None


def prune_silences(
    silences: Iterable[Silence], now: datetime, retention: timedelta = DEFAULT_RETENTION
) -> list[Silence]:
    """Drop silences that ended at least ``retention`` ago, as Alertmanager's GC does."""
    return [s for s in silences if s.ended_at + retention > now]


class AddSilence(_Recorded):
    """Update: create a silence. Give ``ends_at`` or ``duration``; ``starts_at`` defaults to now."""

    matchers: list[str]
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    duration: Duration | None = None
    created_by: str = Field(min_length=1)
    comment: str = Field(min_length=1)


class ExpireSilence(_Recorded):
    """Update: end a pending or active silence now."""

    id: str = Field(min_length=1)
    actor: str = Field(min_length=1)


def build_silence(request: AddSilence, *, id: str, now: datetime) -> Silence:
    """Turn a request into a silence created at ``now``; SilenceRejected says what is wrong."""
    matchers: list[Matcher] = []
    for index, text in enumerate(request.matchers):
        try:
            matchers.extend(parse_matchers(text))
        except MatcherSyntaxError as exc:
            raise SilenceRejected(f"matchers[{index}]: {exc}") from None
    # Like Alertmanager, a silence cannot start in the past: that would rewrite history.
    starts_at = max(request.starts_at or now, now)
    ends_at = _requested_end(request, starts_at, now)
    problems = silence_problems(matchers, starts_at, ends_at)
    if problems:
        raise SilenceRejected("; ".join(problems))
    return Silence(
        id=id,
        matchers=matchers,
        starts_at=starts_at,
        ends_at=ends_at,
        created_by=request.created_by,
        comment=request.comment,
        created_at=now,
    )


def _requested_end(request: AddSilence, starts_at: datetime, now: datetime) -> datetime:
    if request.ends_at is not None and request.duration is not None:
        raise SilenceRejected("give ends_at or duration, not both")
    if request.duration is not None:
        if request.duration <= timedelta(0):
            raise SilenceRejected("duration must be longer than zero")
        return starts_at + request.duration
    if request.ends_at is None:
        raise SilenceRejected("give ends_at or duration")
    if request.ends_at <= now:
        raise SilenceRejected(f"ends_at {request.ends_at.isoformat()} is not in the future")
    return request.ends_at


class SilenceStoreInput(_Recorded):
    """SilenceStoreWorkflow input; ``silences`` carries the state over continue-as-new."""

    silences: list[Silence] = Field(default_factory=list)
    retention: Duration = DEFAULT_RETENTION
    # Continue-as-new earlier than the server suggests (tests use a small number).
    max_history_events: int | None = Field(None, ge=10)


# --- maintenance windows ------------------------------------------------------------------


class MaintenanceWindow(_Recorded):
    """Planned work: mute the matching alerts while any of the named time intervals holds."""

    name: str = Field(min_length=1)
    matchers: list[Matcher]
    # Names of top-level time intervals; check_interval_names proves they exist.
    time_intervals: list[str]
    description: str = ""

    @field_validator("matchers", mode="before")
    @classmethod
    def _parse_text(cls, value: Any) -> Any:
        return _matcher_items(value)

    @field_validator("matchers")
    @classmethod
    def _matchers_required(cls, value: list[Matcher]) -> list[Matcher]:
        # A window that mutes everything should say so: alertname=~".+" is explicit.
        if not value:
            raise ValueError(
                'at least one matcher is required; to mute every alert, write alertname=~".+"'
            )
        return value

    @field_validator("time_intervals")
    @classmethod
    def _intervals_required(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one time interval is required")
        return value


def in_maintenance(
    alert: Alert,
    windows: Iterable[MaintenanceWindow],
    intervals: Mapping[str, TimeInterval],
    now: datetime,
) -> SuppressionReason | None:
    """The first window (in order) that matches ``alert`` and is open at ``now``."""
    for window in windows:
        if not match_all(window.matchers, alert.labels):
            continue
        # Unknown names are skipped, not raised: check_interval_names refuses them at load,
        # and an exception here would fail a workflow task over and over.
        for name in window.time_intervals:
            interval = intervals.get(name)
            if interval is not None and contains(interval, now):
                return SuppressionReason(
                    kind=SuppressionKind.MAINTENANCE,
                    ref=window.name,
                    text=f"in maintenance window '{window.name}' (time interval '{name}')",
                )
    return None


def check_interval_names(
    windows: Sequence[MaintenanceWindow], intervals: Mapping[str, TimeInterval]
) -> list[str]:
    """One ``path: problem`` line per time interval a window names but nobody defined."""
    known = ", ".join(sorted(intervals)) or "none"
    return [
        f"maintenance_windows[{i}].time_intervals[{j}]: undefined time interval '{name}' "
        f"used in maintenance window '{window.name}' (defined: {known})"
        for i, window in enumerate(windows)
        for j, name in enumerate(window.time_intervals)
        if name not in intervals
    ]


def check_names(
    inhibit_rules: Sequence[InhibitRule], windows: Sequence[MaintenanceWindow]
) -> list[str]:
    """One ``path: problem`` line per repeated rule or window name (reasons cite them)."""
    problems: list[str] = []
    for section, names in (
        ("inhibit_rules", [r.name for r in inhibit_rules]),
        ("maintenance_windows", [w.name for w in windows]),
    ):
        first: dict[str, int] = {}
        for index, name in enumerate(names):
            if name is None:
                continue
            if name in first:
                problems.append(
                    f"{section}[{index}].name: '{name}' is already used by {section}[{first[name]}]"
                )
            else:
                first[name] = index
    return problems


# --- all together -------------------------------------------------------------------------


def suppression(
    alert: Alert,
    *,
    now: datetime,
    silences: Iterable[Silence] = (),
    firing: Iterable[Alert] = (),
    inhibit_rules: Sequence[InhibitRule] = (),
    windows: Iterable[MaintenanceWindow] = (),
    intervals: Mapping[str, TimeInterval] | None = None,
) -> SuppressionReason | None:
    """Why ``alert`` is suppressed at ``now``: maintenance, then silence, then inhibition."""
    return (
        in_maintenance(alert, windows, intervals or {}, now)
        or silenced_by(alert, silences, now)
        or inhibition(alert, firing, inhibit_rules)
    )

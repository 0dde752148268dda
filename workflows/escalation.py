"""Escalation policies, and who gets paged, how and when: pure functions of (snapshot, time).

An :class:`EscalationPolicy` is an ordered list of levels. A level pages its targets (users,
or on-call schedules resolved at the level's start) and waits its ``delay`` before the next
level; after the last level the whole policy runs again ``repeat`` more times. One run through
the levels is a *pass*; every (pass, level) pair is an *attempt*, numbered
``pass * len(levels) + level`` from 0, and each page's dedup key includes it, so a retried
activity reuses its key while the next attempt pages afresh.

Each person is reached through their :class:`Responder` entry: notification rules say which
contact method to use how long after the level starts (Slack at once, email after 2 minutes).
A person with no contact methods is paged on the console; one with no rules is paged on every
method at once; one without any responder entry gets both defaults.

The EscalationWorkflow records an :class:`EscalationSnapshot` in its input, so editing config
never changes a running escalation. Levels, passes and the ``at`` instant are parameters:
nothing here reads a clock, draws a random number or does I/O beyond ``ZoneInfo(name)``, and,
like :mod:`workflows.oncall`, the module must be imported passed through the sandbox.

Errors::

    pydantic.ValidationError       a bad policy or responder, rejected when loaded
    EscalationError (ValueError)   a bad argument to a function here
     ├── OutOfRangeError           a level, pass or attempt the policy does not have
     └── NaiveTimeError            a time without a zone
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

from activities.contracts import ContactKind, ContactMethod
from workflows.durations import Duration
from workflows.oncall import Schedule, on_call_at
from workflows.time_intervals import TimeInterval, TimeIntervalSpec, contains

__all__ = [
    "EscalationError",
    "EscalationLevel",
    "EscalationPolicy",
    "EscalationSnapshot",
    "EscalationTarget",
    "LevelResolution",
    "NaiveTimeError",
    "NotificationRule",
    "OutOfRangeError",
    "PagePlan",
    "Responder",
    "dedup_key",
    "level_at",
    "level_plans",
    "low_urgency_wait",
    "policy_problems",
    "responder_problems",
    "total_attempts",
]

MAX_REPEAT = 9
# How far low_urgency_wait looks for working hours to open. A year covers any interval made
# of weekdays, days of the month and months; beyond it the interval is taken as never opening.
WAIT_HORIZON = timedelta(days=366)
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
# What a dedup key keeps of free text, so keys stay printable ASCII and within vendor limits
# (PagerDuty's dedup_key is at most 255 characters).
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9._@-]+")
_KEY_PART = 64


class EscalationError(ValueError):
    """A bad argument to an escalation function."""


class OutOfRangeError(EscalationError):
    """A level, pass or attempt number outside the policy."""


class NaiveTimeError(EscalationError):
    """A datetime without a time zone, which cannot name an instant."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- config models ------------------------------------------------------------------------


class EscalationTarget(_Frozen):
    """Who a level pages: exactly one of a user handle or a schedule name."""

    user: str | None = Field(None, min_length=1)
    schedule: str | None = Field(None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> EscalationTarget:
        if self.user is not None and self.schedule is not None:
            raise ValueError(
                f"a target has either user or schedule, not both "
                f"(user {self.user!r}, schedule {self.schedule!r})"
            )
        if self.user is None and self.schedule is None:
            raise ValueError("a target needs user or schedule")
        return self


class EscalationLevel(_Frozen):
    """One step of a policy: page ``targets``, then wait ``delay`` before the next level."""

    targets: list[EscalationTarget] = Field(min_length=1)
    delay: Duration
    # round_robin pages one target per pass, rotating, to spread the load across passes.
    mode: Literal["all", "round_robin"] = "all"

    @field_validator("delay")
    @classmethod
    def _check_delay(cls, value: timedelta) -> timedelta:
        # A zero delay would page every level at once, which is a broadcast, not escalation.
        if value <= timedelta(0):
            raise ValueError(f"delay must be more than 0, got {value}")
        return value


class EscalationPolicy(_Frozen):
    """Ordered levels, run once plus ``repeat`` more times until someone acknowledges."""

    name: str = Field(min_length=1)
    levels: list[EscalationLevel] = Field(min_length=1)
    repeat: int = Field(0, ge=0, le=MAX_REPEAT)
    urgency: Literal["high", "low"] = "high"
    # The name of a TimeInterval; a low-urgency escalation starts paging only inside it.
    working_hours: str | None = Field(None, min_length=1)


class NotificationRule(_Frozen):
    """Use contact method ``contact`` (an index, or every method of a kind) ``after`` the start."""

    # Strict, so a YAML ``true`` or ``"1"`` is an error rather than contact method 1.
    contact: StrictInt | ContactKind
    after: Duration = timedelta(0)

    @field_validator("contact")
    @classmethod
    def _check_contact(cls, value: int | ContactKind) -> int | ContactKind:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"contact index must be 0 or more, got {value}")
        return value

    @field_validator("after")
    @classmethod
    def _check_after(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError(f"after must not be negative, got {value}")
        return value


class Responder(_Frozen):
    """A person's contact methods and notification rules (empty lists mean the defaults)."""

    handle: str = Field(min_length=1)
    name: str
    contact_methods: list[ContactMethod] = Field(default_factory=list)
    notification_rules: list[NotificationRule] = Field(default_factory=list)

    @property
    def contacts(self) -> list[ContactMethod]:
        """The contact methods in force: the configured ones, else one console method."""
        return list(self.contact_methods) or [ContactMethod(kind=ContactKind.CONSOLE)]

    @property
    def rules(self) -> list[NotificationRule]:
        """The rules in force: the configured ones, else every contact method at once."""
        if self.notification_rules:
            return list(self.notification_rules)
        return [NotificationRule(contact=index) for index in range(len(self.contacts))]


class EscalationSnapshot(_Frozen):
    """Everything an escalation needs, frozen at its start and recorded in its input."""

    incident_id: str = Field(min_length=1)
    policy: EscalationPolicy
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    responders: dict[str, Responder] = Field(default_factory=dict)
    intervals: dict[str, TimeInterval] = Field(default_factory=dict)


# --- results ----------------------------------------------------------------------------


class PagePlan(_Frozen):
    """One notification to send: to ``user`` through ``contact``, at level start + ``offset``."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    user: str
    contact: ContactMethod
    # The contact's position in the responder's contact methods (0 for the console default).
    contact_index: int
    offset: Duration
    level: int
    pass_: int = Field(alias="pass")
    attempt: int
    dedup_key: str = Field(min_length=1, max_length=255)
    via: str


class LevelResolution(_Frozen):
    """A level's pages, ordered by offset, and what could not be resolved, as text."""

    plans: list[PagePlan] = Field(default_factory=list)
    # For the timeline: a schedule with nobody on call, a rule that names no contact method.
    warnings: list[str] = Field(default_factory=list)


# --- attempts -----------------------------------------------------------------------------


def total_attempts(policy: EscalationPolicy) -> int:
    """How many (pass, level) attempts the policy makes before it is exhausted."""
    return len(policy.levels) * (policy.repeat + 1)


def level_at(policy: EscalationPolicy, attempt: int) -> tuple[int, int]:
    """The (level, pass) of attempt number ``attempt``, both counted from 0."""
    if not 0 <= attempt < total_attempts(policy):
        raise OutOfRangeError(
            f"attempt {attempt} is outside policy {policy.name!r}, "
            f"which makes attempts 0 to {total_attempts(policy) - 1}"
        )
    pass_, level = divmod(attempt, len(policy.levels))
    return level, pass_


def dedup_key(incident_id: str, level: int, attempt: int, user: str, contact_index: int) -> str:
    """A stable, printable key (at most 255 characters) for one page of one attempt."""
    # The readable part helps whoever reads a vendor's console; it is sanitised and clipped,
    # so the digest of the exact inputs is what keeps distinct pages distinct.
    exact = json.dumps([incident_id, level, attempt, user, contact_index])
    digest = hashlib.sha256(exact.encode()).hexdigest()[:16]
    return (
        f"fireline-{_key_part(incident_id)}-l{level}-a{attempt}-"
        f"{_key_part(user)}-c{contact_index}-{digest}"
    )


def _key_part(text: str) -> str:
    return _KEY_UNSAFE.sub("_", text)[:_KEY_PART]


# --- resolving a level --------------------------------------------------------------------


def level_plans(
    snapshot: EscalationSnapshot, *, level: int, pass_: int, at: datetime
) -> LevelResolution:
    """Who level ``level`` of pass ``pass_`` pages when it starts at ``at``, and through what."""
    policy = snapshot.policy
    _check_level(policy, level, pass_)
    _aware(at)
    attempt = pass_ * len(policy.levels) + level
    warnings: list[str] = []
    plans: list[PagePlan] = []
    seen: set[str] = set()
    for user, via in _reached(snapshot, level, pass_, at, warnings):
        # One person reached twice in a level (directly and through a schedule) is paged once.
        if user in seen:
            continue
        seen.add(user)
        responder = snapshot.responders.get(user) or Responder(handle=user, name=user)
        for index, contact, offset in _deliveries(responder, level, warnings):
            plans.append(
                PagePlan(
                    user=user,
                    contact=contact,
                    contact_index=index,
                    offset=offset,
                    level=level,
                    pass_=pass_,
                    attempt=attempt,
                    dedup_key=dedup_key(snapshot.incident_id, level, attempt, user, index),
                    via=via,
                )
            )
    # sorted() is stable, so plans at the same offset keep target, then contact order.
    return LevelResolution(plans=sorted(plans, key=lambda p: p.offset), warnings=warnings)


def _check_level(policy: EscalationPolicy, level: int, pass_: int) -> None:
    if not 0 <= level < len(policy.levels):
        raise OutOfRangeError(
            f"level {level} is outside policy {policy.name!r}, "
            f"which has levels 0 to {len(policy.levels) - 1}"
        )
    if not 0 <= pass_ <= policy.repeat:
        raise OutOfRangeError(
            f"pass {pass_} is outside policy {policy.name!r}, "
            f"which makes passes 0 to {policy.repeat}"
        )


def _aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise NaiveTimeError(
            f"at must be timezone-aware (e.g. 2026-03-02T09:00:00+00:00), "
            f"got naive {at.isoformat()}"
        )


def _reached(
    snapshot: EscalationSnapshot, level: int, pass_: int, at: datetime, warnings: list[str]
) -> Iterator[tuple[str, str]]:
    """The (user, via text) pairs the level's targets resolve to at ``at``, in target order."""
    spec = snapshot.policy.levels[level]
    targets = spec.targets
    if spec.mode == "round_robin":
        targets = [targets[pass_ % len(targets)]]
    label = f"level {level + 1}"
    for target in targets:
        if target.user is not None:
            yield target.user, f"{label} via user {target.user}"
            continue
        name = target.schedule or ""
        schedule = snapshot.schedules.get(name)
        if schedule is None:
            warnings.append(f"{label}: schedule {name!r} is not in the snapshot")
            continue
        shift = on_call_at(schedule, at)
        if shift is None:
            stamp = at.astimezone(UTC).isoformat()
            warnings.append(f"{label}: nobody on call for schedule {name!r} at {stamp}")
            continue
        yield shift.user, f"{label} via schedule {name} ({shift.user} on call)"


def _deliveries(
    responder: Responder, level: int, warnings: list[str]
) -> list[tuple[int, ContactMethod, timedelta]]:
    """(contact index, contact, offset) for each method the responder's rules reach."""
    contacts = responder.contacts
    earliest: dict[int, timedelta] = {}
    for number, rule in enumerate(responder.rules):
        indexes = _rule_indexes(rule, contacts)
        if not indexes:
            warnings.append(
                f"level {level + 1}: {responder.handle}: notification_rules[{number}] "
                f"matches no contact method"
            )
        for index in indexes:
            # Two rules on one method would share its dedup key: only the earliest can send.
            earliest[index] = min(earliest.get(index, rule.after), rule.after)
    if not earliest:
        # A person must never go unpaged because of a broken rule: fall back to every method.
        warnings.append(f"level {level + 1}: {responder.handle}: paging every contact method")
        earliest = dict.fromkeys(range(len(contacts)), timedelta(0))
    return [(index, contacts[index], earliest[index]) for index in sorted(earliest)]


def _rule_indexes(rule: NotificationRule, contacts: list[ContactMethod]) -> list[int]:
    # A kind reaches every method of that kind (two mailboxes both get the email).
    if isinstance(rule.contact, ContactKind):
        return [i for i, contact in enumerate(contacts) if contact.kind is rule.contact]
    return [rule.contact] if rule.contact < len(contacts) else []


# --- low urgency ----------------------------------------------------------------------------


def low_urgency_wait(snapshot: EscalationSnapshot, at: datetime) -> datetime | None:
    """When a low-urgency escalation may start paging (UTC), or None if it may page now."""
    _aware(at)
    policy = snapshot.policy
    if policy.urgency == "high" or policy.working_hours is None:
        return None
    interval = snapshot.intervals.get(policy.working_hours)
    # Fail open: a missing interval (policy_problems reports it at load) must not hold a page.
    if interval is None or contains(interval, at):
        return None
    opens = [
        found
        for spec in interval.time_intervals
        if (found := _next_opening(spec, at.astimezone(UTC))) is not None
    ]
    # An interval that never opens within the horizon would hold the page forever: page now.
    return min(opens) if opens else None


def _next_opening(spec: TimeIntervalSpec, at: datetime) -> datetime | None:
    """The first instant at or after ``at`` inside ``spec``, within the horizon.

    Membership is judged on the spec's wall clock, so it can only begin where a wall-clock
    minute enters a time range (its start, or midnight when the spec has no times) or where
    the wall clock jumps at a DST change. Those are the only candidates tried, one local day at
    a time; the first day with one inside the spec holds the answer.
    """
    zone = ZoneInfo(spec.location)
    starts = [_minutes(r.start_minute) for r in spec.times] or [time(0)]
    day = at.astimezone(zone).date()
    last = (at + WAIT_HORIZON).astimezone(zone).date()
    while day <= last:
        candidates = [c for c in _day_candidates(day, starts, zone) if c >= at]
        inside = [c for c in candidates if spec.contains(c)]
        if inside:
            return min(inside)
        day += _DAY
    return None


def _minutes(minute_of_day: int) -> time:
    return time(minute_of_day // 60, minute_of_day % 60)


def _day_candidates(day: date, starts: list[time], zone: ZoneInfo) -> list[datetime]:
    wall = [datetime.combine(day, start) for start in starts]
    # Both readings of a repeated wall time (fold 0 and 1); a skipped one reads as an instant
    # whose wall clock differs, which spec.contains then rejects.
    instants = [w.replace(tzinfo=zone, fold=fold).astimezone(UTC) for w in wall for fold in (0, 1)]
    return instants + _transitions(day, zone)


def _transitions(day: date, zone: ZoneInfo) -> list[datetime]:
    """UTC offset changes of ``zone`` during the local day ``day`` (at most one in practice)."""
    lo = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    hi = datetime.combine(day + _DAY, time(0), tzinfo=zone).astimezone(UTC)
    if lo.astimezone(zone).utcoffset() == hi.astimezone(zone).utcoffset():
        return []
    # Zones change offset on a whole minute: bisect for the first minute with the new offset.
    before = lo.astimezone(zone).utcoffset()
    low, high = 0, (hi - lo) // _MINUTE
    while low < high:
        middle = (low + high) // 2
        if (lo + middle * _MINUTE).astimezone(zone).utcoffset() == before:
            low = middle + 1
        else:
            high = middle
    return [lo + low * _MINUTE]


# --- config validation ----------------------------------------------------------------------


def policy_problems(
    policy: EscalationPolicy, *, users: set[str], schedules: set[str], intervals: set[str]
) -> list[str]:
    """Messages for every name the policy uses that config does not define, with field paths."""
    problems: list[str] = []
    for i, level in enumerate(policy.levels):
        for j, target in enumerate(level.targets):
            path = f"levels[{i}].targets[{j}]"
            if target.user is not None and target.user not in users:
                problems.append(f"{path}.user: unknown user {target.user!r}")
            if target.schedule is not None and target.schedule not in schedules:
                problems.append(f"{path}.schedule: unknown schedule {target.schedule!r}")
    if policy.working_hours is not None and policy.working_hours not in intervals:
        problems.append(f"working_hours: unknown time interval {policy.working_hours!r}")
    if policy.urgency == "low" and policy.working_hours is None:
        problems.append("urgency low needs working_hours")
    return problems


def responder_problems(responder: Responder) -> list[str]:
    """Messages for notification rules naming a contact method the responder does not have."""
    contacts = responder.contacts
    problems: list[str] = []
    for i, rule in enumerate(responder.notification_rules):
        if _rule_indexes(rule, contacts):
            continue
        path = f"notification_rules[{i}].contact"
        if isinstance(rule.contact, ContactKind):
            problems.append(f"{path}: no {rule.contact.value} contact method")
        elif responder.contact_methods:
            problems.append(
                f"{path}: no contact method at index {rule.contact} "
                f"(contact_methods has {len(contacts)})"
            )
        else:
            problems.append(
                f"{path}: no contact method at index {rule.contact} "
                "(contact_methods is empty, so only the console default at index 0)"
            )
    return problems

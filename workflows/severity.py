"""Severity classification as a pure, configured policy.

An incident's first severity is the ``severity`` of the first rule in the policy whose every
given condition holds, or the policy's ``default`` when none does; the commander can always set
another one later. The decision carries the rule's name and one human-readable reason per
condition, so the timeline can say why. Like ``workflows.time_intervals``, import it in
workflows through ``workflow.unsafe.imports_passed_through()``.

Severity levels:

- **SEV1** critical: customers broadly cannot use the product, data is lost, or security is
  breached. All hands, executive and status-page communication.
- **SEV2** major: a significant part of the product is down for many customers. Page now.
- **SEV3** minor: degraded or partly working, with a workaround. Fix in working hours.
- **SEV4** low: no customer impact yet (lost redundancy, a near miss). Track it.

Conditions, all optional and all required to hold when given:

- ``impact_at_least``: the reported impact is at least this level
  (none < degraded < partial_outage < full_outage).
- ``service_tiers``: the affected service's business tier is one of these.
- ``customer_tiers``: at least one affected customer tier is one of these.
- ``during`` / ``outside``: the instant is inside any / none of these named time intervals
  (Alertmanager ``time_intervals`` semantics, see ``workflows.time_intervals``).
- ``data_loss`` / ``security``: the reported flag equals this value.

Default policy (``default_policy()``, used when the configuration has none); rules are tried
top to bottom, and tiers are the service catalog's ``tier`` value:

| # | rule                  | when                                           | severity |
|---|-----------------------|------------------------------------------------|----------|
| 1 | full-outage           | impact is full_outage                          | SEV1     |
| 2 | data-loss             | data loss reported                             | SEV1     |
| 3 | security              | security impact reported                       | SEV1     |
| 4 | tier-1-partial-outage | impact is partial_outage, service is `tier-1`  | SEV1     |
| 5 | partial-outage        | impact is partial_outage                       | SEV2     |
| 6 | tier-1-degraded       | impact is degraded, service is `tier-1`        | SEV2     |
| 7 | degraded              | impact is degraded                             | SEV3     |
|   | (default)             | no customer impact reported                    | SEV4     |

Example: a trading platform's market-data feed, whose route uses this policy. Degraded market
data while the market is open costs traders money by the second, so it is SEV1; after the close
it can wait, so SEV3, unless the feed is entirely down, which still matters for after-hours
trading. ``market-hours`` follows New York's clock through daylight-saving changes.

```yaml
default: SEV4
time_intervals:
  - name: market-hours
    time_intervals:
      - weekdays: ["monday:friday"]
        times:
          - start_time: "09:30"
            end_time: "16:00"
        location: America/New_York
rules:
  - name: market-open-impact
    when:
      impact_at_least: degraded
      during: [market-hours]
    severity: SEV1
  - name: after-hours-feed-down
    when:
      impact_at_least: full_outage
      outside: [market-hours]
    severity: SEV2
  - name: after-hours-impact
    when:
      impact_at_least: degraded
      outside: [market-hours]
    severity: SEV3
```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from workflows.time_intervals import TimeInterval, first_match

__all__ = [
    "ImpactFacts",
    "ImpactLevel",
    "Severity",
    "SeverityCondition",
    "SeverityDecision",
    "SeverityPolicy",
    "SeverityRule",
    "classify",
    "default_policy",
]


class Severity(StrEnum):
    """Incident severity; SEV1 is the most severe."""

    SEV1 = "SEV1"
    SEV2 = "SEV2"
    SEV3 = "SEV3"
    SEV4 = "SEV4"


class ImpactLevel(StrEnum):
    """How badly customers are affected, declared from least to most severe."""

    NONE = "none"
    DEGRADED = "degraded"
    PARTIAL_OUTAGE = "partial_outage"
    FULL_OUTAGE = "full_outage"

    @property
    def rank(self) -> int:
        """Position in the ordering: 0 for none up to 3 for full_outage."""
        # Enum iteration follows declaration order, which is the severity order.
        return list(ImpactLevel).index(self)

    def at_least(self, other: ImpactLevel) -> bool:
        """Return whether this impact is as bad as ``other`` or worse."""
        return self.rank >= other.rank


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ImpactFacts(_Model):
    """What the declarer or the alert tells us about the impact."""

    impact: ImpactLevel = ImpactLevel.NONE
    customer_tiers: list[str] = []
    data_loss: bool = False
    security: bool = False


class SeverityCondition(_Model):
    """Conditions that must all hold for a rule to match; None means don't care."""

    impact_at_least: ImpactLevel | None = None
    service_tiers: list[str] | None = None
    customer_tiers: list[str] | None = None
    during: list[str] | None = None
    outside: list[str] | None = None
    data_loss: bool | None = None
    security: bool | None = None

    @field_validator("service_tiers", "customer_tiers", "during", "outside")
    @classmethod
    def _reject_empty(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        # An empty list would silently mean "never" (or "always" for outside); make it explicit.
        if value is not None and not value:
            raise ValueError(f"{info.field_name}: must not be empty; omit it to not care")
        return value


class SeverityRule(_Model):
    """A named condition and the severity it assigns."""

    name: str = Field(min_length=1)
    when: SeverityCondition
    severity: Severity


class SeverityPolicy(_Model):
    """Ordered severity rules, first match wins, with the time intervals they refer to."""

    default: Severity = Severity.SEV3
    rules: list[SeverityRule] = []
    time_intervals: list[TimeInterval] = []

    @model_validator(mode="after")
    def _check_names(self) -> SeverityPolicy:
        _reject_duplicates("time_intervals: duplicate name", (i.name for i in self.time_intervals))
        _reject_duplicates("rules: duplicate rule name", (r.name for r in self.rules))
        known = {i.name for i in self.time_intervals}
        for rule in self.rules:
            for field in ("during", "outside"):
                for name in getattr(rule.when, field) or []:
                    if name not in known:
                        raise ValueError(
                            f"rules: rule {rule.name!r} uses unknown time interval {name!r}"
                            f" in {field}"
                        )
        return self


class SeverityDecision(_Model):
    """The severity chosen, the rule that chose it, and why."""

    severity: Severity
    rule: str | None
    reasons: list[str]


def _reject_duplicates(message: str, names: Iterable[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{message} {name!r}")
        seen.add(name)


# --- evaluation ---------------------------------------------------------------------------

_Check = tuple[bool, str]


@dataclass(frozen=True)
class _Context:
    """Everything a condition may look at, resolved once per classification."""

    facts: ImpactFacts
    service_tier: str | None
    at: datetime
    intervals: Mapping[str, TimeInterval]

    def clock(self, interval: str) -> tuple[bool, str]:
        """Whether ``at`` is in the interval, and ``at`` as HH:MM in the zone that decided."""
        specs = self.intervals[interval].time_intervals
        spec = first_match(self.intervals[interval], self.at)
        # Outside every spec no zone decided; the first spec's is the one a reader expects.
        location = spec.location if spec else (specs[0].location if specs else "UTC")
        local = self.at.astimezone(ZoneInfo(location))
        return spec is not None, f"{local:%H:%M} {location}"


def _names(values: Iterable[str]) -> str:
    return ", ".join(values)


def _check_impact(when: SeverityCondition, ctx: _Context) -> _Check | None:
    want, have = when.impact_at_least, ctx.facts.impact
    if want is None:
        return None
    if have.at_least(want):
        return True, f"impact {have} is at least {want}"
    return False, f"impact {have} is below {want}"


def _check_service_tiers(when: SeverityCondition, ctx: _Context) -> _Check | None:
    want, tier = when.service_tiers, ctx.service_tier
    if want is None:
        return None
    if tier is None:
        return False, f"service tier is unknown, so not one of {_names(want)}"
    if tier in want:
        return True, f"service tier {tier} is one of {_names(want)}"
    return False, f"service tier {tier} is not one of {_names(want)}"


def _check_customer_tiers(when: SeverityCondition, ctx: _Context) -> _Check | None:
    want, have = when.customer_tiers, ctx.facts.customer_tiers
    if want is None:
        return None
    if not have:
        return False, f"no affected customer tier is reported, so none of {_names(want)}"
    overlap = [tier for tier in have if tier in want]
    if overlap:
        return True, f"affected customer tiers include {_names(overlap)}"
    return False, f"affected customer tiers {_names(have)} include none of {_names(want)}"


def _check_during(when: SeverityCondition, ctx: _Context) -> _Check | None:
    if when.during is None:
        return None
    misses: list[str] = []
    for name in when.during:
        inside, clock = ctx.clock(name)
        if inside:
            return True, f"{clock} is within {name}"
        misses.append(f"{clock} is not within {name}")
    return False, "; ".join(misses)


def _check_outside(when: SeverityCondition, ctx: _Context) -> _Check | None:
    if when.outside is None:
        return None
    outside: list[str] = []
    for name in when.outside:
        inside, clock = ctx.clock(name)
        if inside:
            return False, f"{clock} is within {name}"
        outside.append(f"{clock} is outside {name}")
    return True, "; ".join(outside)


def _check_data_loss(when: SeverityCondition, ctx: _Context) -> _Check | None:
    if when.data_loss is None:
        return None
    have = ctx.facts.data_loss
    return have == when.data_loss, "data loss is reported" if have else "no data loss is reported"


def _check_security(when: SeverityCondition, ctx: _Context) -> _Check | None:
    if when.security is None:
        return None
    have = ctx.facts.security
    reason = "a security impact is reported" if have else "no security impact is reported"
    return have == when.security, reason


# The order conditions are checked in, and so the order of the reasons.
_CHECKS: tuple[Callable[[SeverityCondition, _Context], _Check | None], ...] = (
    _check_impact,
    _check_service_tiers,
    _check_customer_tiers,
    _check_during,
    _check_outside,
    _check_data_loss,
    _check_security,
)


def _evaluate(when: SeverityCondition, ctx: _Context) -> tuple[bool, list[str]]:
    """Check the given conditions in order, stopping at the first that fails (reason last)."""
    reasons: list[str] = []
    for check in _CHECKS:
        result = check(when, ctx)
        if result is None:
            continue
        holds, reason = result
        reasons.append(reason)
        if not holds:
            return False, reasons
    return True, reasons or ["no conditions, so it always matches"]


def classify(
    policy: SeverityPolicy, facts: ImpactFacts, *, service_tier: str | None, at: datetime
) -> SeverityDecision:
    """Return the severity of the first matching rule of ``policy``, or its default."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"at must be timezone-aware, got naive {at.isoformat()}")
    ctx = _Context(facts, service_tier, at, {i.name: i for i in policy.time_intervals})
    misses: list[str] = []
    for rule in policy.rules:
        matched, reasons = _evaluate(rule.when, ctx)
        if matched:
            return SeverityDecision(severity=rule.severity, rule=rule.name, reasons=reasons)
        misses.append(f"rule {rule.name!r} did not match: {reasons[-1]}")
    misses.append(f"no rule matched, so the default {policy.default} applies")
    return SeverityDecision(severity=policy.default, rule=None, reasons=misses)


def default_policy() -> SeverityPolicy:
    """Return the out-of-the-box policy tabled in this module's docstring."""

    def rule(name: str, severity: Severity, **when: object) -> SeverityRule:
        return SeverityRule(
            name=name, when=SeverityCondition.model_validate(when), severity=severity
        )

    tier_1 = ["tier-1"]
    return SeverityPolicy(
        default=Severity.SEV4,
        rules=[
            rule("full-outage", Severity.SEV1, impact_at_least=ImpactLevel.FULL_OUTAGE),
            rule("data-loss", Severity.SEV1, data_loss=True),
            rule("security", Severity.SEV1, security=True),
            rule(
                "tier-1-partial-outage",
                Severity.SEV1,
                impact_at_least=ImpactLevel.PARTIAL_OUTAGE,
                service_tiers=tier_1,
            ),
            rule("partial-outage", Severity.SEV2, impact_at_least=ImpactLevel.PARTIAL_OUTAGE),
            rule(
                "tier-1-degraded",
                Severity.SEV2,
                impact_at_least=ImpactLevel.DEGRADED,
                service_tiers=tier_1,
            ),
            rule("degraded", Severity.SEV3, impact_at_least=ImpactLevel.DEGRADED),
        ],
    )

"""Table tests for the severity policy."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from pydantic import BaseModel, ValidationError

import workflows.severity
from workflows.severity import (
    ImpactFacts,
    ImpactLevel,
    Severity,
    SeverityDecision,
    SeverityPolicy,
    classify,
    default_policy,
)

DOC = workflows.severity.__doc__ or ""


def utc(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    """Build a UTC instant."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def market_policy() -> SeverityPolicy:
    """Load the market-hours example exactly as the module docstring documents it."""
    block = re.search(r"```yaml\n(.*?)```", DOC, re.DOTALL)
    assert block is not None, "the docstring lost its yaml example"
    return SeverityPolicy.model_validate(yaml.safe_load(block.group(1)))


MARKET = market_policy()
DEFAULT = default_policy()
NOON = utc(2026, 3, 9)


# --- impact ordering --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "rank"),
    [
        (ImpactLevel.NONE, 0),
        (ImpactLevel.DEGRADED, 1),
        (ImpactLevel.PARTIAL_OUTAGE, 2),
        (ImpactLevel.FULL_OUTAGE, 3),
    ],
)
def test_impact_rank(level: ImpactLevel, rank: int) -> None:
    assert level.rank == rank


@pytest.mark.parametrize(
    ("have", "want", "expected"),
    [
        (ImpactLevel.NONE, ImpactLevel.NONE, True),
        (ImpactLevel.NONE, ImpactLevel.DEGRADED, False),
        (ImpactLevel.DEGRADED, ImpactLevel.PARTIAL_OUTAGE, False),
        (ImpactLevel.PARTIAL_OUTAGE, ImpactLevel.PARTIAL_OUTAGE, True),
        (ImpactLevel.PARTIAL_OUTAGE, ImpactLevel.FULL_OUTAGE, False),
        (ImpactLevel.FULL_OUTAGE, ImpactLevel.DEGRADED, True),
        # string order would get this one wrong ("full_outage" < "none")
        (ImpactLevel.FULL_OUTAGE, ImpactLevel.NONE, True),
    ],
)
def test_impact_at_least(have: ImpactLevel, want: ImpactLevel, expected: bool) -> None:
    assert have.at_least(want) is expected


# --- the default policy -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "service_tier", "severity", "rule"),
    [
        ({"impact": "full_outage"}, "tier-3", Severity.SEV1, "full-outage"),
        ({"impact": "full_outage"}, None, Severity.SEV1, "full-outage"),
        ({"data_loss": True}, "tier-3", Severity.SEV1, "data-loss"),
        ({"security": True}, None, Severity.SEV1, "security"),
        ({"impact": "degraded", "security": True}, "tier-2", Severity.SEV1, "security"),
        ({"impact": "partial_outage"}, "tier-1", Severity.SEV1, "tier-1-partial-outage"),
        ({"impact": "partial_outage"}, "tier-2", Severity.SEV2, "partial-outage"),
        ({"impact": "partial_outage"}, None, Severity.SEV2, "partial-outage"),
        ({"impact": "degraded"}, "tier-1", Severity.SEV2, "tier-1-degraded"),
        ({"impact": "degraded"}, "tier-2", Severity.SEV3, "degraded"),
        ({"impact": "degraded"}, "Tier-1", Severity.SEV3, "degraded"),
        ({}, "tier-1", Severity.SEV4, None),
        ({"customer_tiers": ["enterprise"]}, "tier-1", Severity.SEV4, None),
    ],
)
def test_default_policy(
    facts: dict[str, Any], service_tier: str | None, severity: Severity, rule: str | None
) -> None:
    decision = classify(
        DEFAULT, ImpactFacts.model_validate(facts), service_tier=service_tier, at=NOON
    )
    assert (decision.severity, decision.rule) == (severity, rule)


def test_default_policy_matches_the_documented_table() -> None:
    rows = re.findall(r"^\| (\d+) \| (\S+) +\|.*\| (SEV\d) +\|$", DOC, re.MULTILINE)
    documented = [(name, Severity(severity)) for _, name, severity in rows]
    assert documented == [(r.name, r.severity) for r in DEFAULT.rules]
    assert re.search(r"^\|   \| \(default\) .*\| (SEV\d) +\|$", DOC, re.MULTILINE)
    assert f"| {DEFAULT.default}     |" in DOC


def test_default_policy_reasons_when_nothing_matches() -> None:
    decision = classify(DEFAULT, ImpactFacts(), service_tier="tier-1", at=NOON)
    assert decision == SeverityDecision(
        severity=Severity.SEV4,
        rule=None,
        reasons=[
            "rule 'full-outage' did not match: impact none is below full_outage",
            "rule 'data-loss' did not match: no data loss is reported",
            "rule 'security' did not match: no security impact is reported",
            "rule 'tier-1-partial-outage' did not match: impact none is below partial_outage",
            "rule 'partial-outage' did not match: impact none is below partial_outage",
            "rule 'tier-1-degraded' did not match: impact none is below degraded",
            "rule 'degraded' did not match: impact none is below degraded",
            "no rule matched, so the default SEV4 applies",
        ],
    )


def test_default_policy_reasons_when_a_rule_matches() -> None:
    decision = classify(
        DEFAULT, ImpactFacts(impact=ImpactLevel.DEGRADED), service_tier="tier-1", at=NOON
    )
    assert decision.reasons == [
        "impact degraded is at least degraded",
        "service tier tier-1 is one of tier-1",
    ]


# --- the market-hours example -----------------------------------------------------------

# Market hours are 09:30-16:00 New York time, Monday to Friday. 2026-03-08 (Sunday) springs
# forward, so the open moves from 14:30 to 13:30 UTC; 2026-11-01 (Sunday) falls back.
MARKET_CASES = [
    ("fri before spring, 08:45 EST", utc(2026, 3, 6, 13, 45), "degraded", "SEV3"),
    ("fri before spring, 09:45 EST", utc(2026, 3, 6, 14, 45), "degraded", "SEV1"),
    ("fri before spring, 15:59 EST", utc(2026, 3, 6, 20, 59), "degraded", "SEV1"),
    ("mon after spring, 09:45 EDT", utc(2026, 3, 9, 13, 45), "degraded", "SEV1"),
    ("mon after spring, 15:59 EDT", utc(2026, 3, 9, 19, 59), "degraded", "SEV1"),
    ("mon after spring, 16:00 EDT close", utc(2026, 3, 9, 20, 0), "degraded", "SEV3"),
    ("spring-forward sunday", utc(2026, 3, 8, 15, 0), "degraded", "SEV3"),
    ("fri before fall, 09:30 EDT", utc(2026, 10, 30, 13, 30), "degraded", "SEV1"),
    ("mon after fall, 08:30 EST", utc(2026, 11, 2, 13, 30), "degraded", "SEV3"),
    ("mon after fall, 09:30 EST", utc(2026, 11, 2, 14, 30), "degraded", "SEV1"),
    ("saturday, feed down", utc(2026, 3, 7, 15, 0), "full_outage", "SEV2"),
    ("open, feed down", utc(2026, 3, 9, 15, 0), "full_outage", "SEV1"),
    ("open, partial outage", utc(2026, 3, 9, 15, 0), "partial_outage", "SEV1"),
    ("after close, partial outage", utc(2026, 3, 9, 21, 0), "partial_outage", "SEV3"),
    ("open, no impact", utc(2026, 3, 9, 15, 0), "none", "SEV4"),
    # London is still on GMT on 2026-03-09 while New York is on EDT: 14:45 GMT is 10:45 EDT.
    ("instant in london", datetime(2026, 3, 9, 14, 45, tzinfo=ZoneInfo("Europe/London")),
     "degraded", "SEV1"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("at", "impact", "severity"),
    [pytest.param(at, impact, sev, id=name) for name, at, impact, sev in MARKET_CASES],
)
def test_market_hours_example(at: datetime, impact: str, severity: str) -> None:
    facts = ImpactFacts(impact=ImpactLevel(impact))
    assert classify(MARKET, facts, service_tier=None, at=at).severity == Severity(severity)


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(
            utc(2026, 3, 9, 13, 45),
            SeverityDecision(
                severity=Severity.SEV1,
                rule="market-open-impact",
                reasons=[
                    "impact degraded is at least degraded",
                    "09:45 America/New_York is within market-hours",
                ],
            ),
            id="open",
        ),
        pytest.param(
            utc(2026, 3, 6, 13, 45),
            SeverityDecision(
                severity=Severity.SEV3,
                rule="after-hours-impact",
                reasons=[
                    "impact degraded is at least degraded",
                    "08:45 America/New_York is outside market-hours",
                ],
            ),
            id="before the open",
        ),
    ],
)
def test_market_hours_reasons(at: datetime, expected: SeverityDecision) -> None:
    facts = ImpactFacts(impact=ImpactLevel.DEGRADED)
    assert classify(MARKET, facts, service_tier=None, at=at) == expected


# --- rule order and individual conditions -----------------------------------------------

WEEKDAYS: dict[str, Any] = {"name": "weekdays", "time_intervals": [{"weekdays": ["monday:friday"]}]}
WEEKEND: dict[str, Any] = {
    "name": "weekend",
    "time_intervals": [{"weekdays": ["saturday", "sunday"]}],
}
NY_MORNING: dict[str, Any] = {
    "name": "ny-morning",
    "time_intervals": [
        {
            "times": [{"start_time": "08:00", "end_time": "12:00"}],
            "location": "America/New_York",
        }
    ],
}
MONDAY = utc(2026, 3, 9)
SATURDAY = utc(2026, 3, 7)


def policy(*rules: tuple[str, dict[str, Any], str], default: str = "SEV3") -> SeverityPolicy:
    """Build a policy from (name, when, severity) rules over the test intervals."""
    return SeverityPolicy.model_validate(
        {
            "default": default,
            "time_intervals": [WEEKDAYS, WEEKEND, NY_MORNING],
            "rules": [{"name": n, "when": w, "severity": s} for n, w, s in rules],
        }
    )


@pytest.mark.parametrize(
    ("rules", "severity", "rule"),
    [
        pytest.param(
            [("broad", {"impact_at_least": "degraded"}, "SEV3"),
             ("specific", {"impact_at_least": "degraded", "during": ["weekdays"]}, "SEV1")],
            Severity.SEV3, "broad", id="broad first wins",
        ),
        pytest.param(
            [("specific", {"impact_at_least": "degraded", "during": ["weekdays"]}, "SEV1"),
             ("broad", {"impact_at_least": "degraded"}, "SEV3")],
            Severity.SEV1, "specific", id="specific first wins",
        ),
        pytest.param(
            [("no-match", {"security": True}, "SEV1"), ("catch-all", {}, "SEV4"),
             ("never-reached", {"impact_at_least": "none"}, "SEV2")],
            Severity.SEV4, "catch-all", id="empty condition matches",
        ),
    ],
)  # fmt: skip
def test_first_match_wins(
    rules: list[tuple[str, dict[str, Any], str]], severity: Severity, rule: str
) -> None:
    decision = classify(
        policy(*rules), ImpactFacts(impact=ImpactLevel.DEGRADED), service_tier=None, at=MONDAY
    )
    assert (decision.severity, decision.rule) == (severity, rule)


def test_every_condition_gives_a_reason_in_order() -> None:
    when = {
        "security": False,
        "data_loss": True,
        "outside": ["weekend"],
        "during": ["weekend", "weekdays"],
        "customer_tiers": ["enterprise", "premium"],
        "service_tiers": ["tier-1", "tier-2"],
        "impact_at_least": "partial_outage",
    }
    facts = ImpactFacts(
        impact=ImpactLevel.FULL_OUTAGE, customer_tiers=["free", "premium"], data_loss=True
    )
    decision = classify(policy(("all", when, "SEV1")), facts, service_tier="tier-2", at=MONDAY)
    assert decision.reasons == [
        "impact full_outage is at least partial_outage",
        "service tier tier-2 is one of tier-1, tier-2",
        "affected customer tiers include premium",
        "12:00 UTC is within weekdays",
        "12:00 UTC is outside weekend",
        "data loss is reported",
        "no security impact is reported",
    ]
    assert decision.rule == "all"


def test_empty_condition_reason() -> None:
    decision = classify(policy(("any", {}, "SEV2")), ImpactFacts(), service_tier=None, at=MONDAY)
    assert decision.reasons == ["no conditions, so it always matches"]


# (when, facts, service tier, at, matched?, reason)
CONDITION_CASES = [
    ("tier unknown", {"service_tiers": ["tier-1"]}, {}, None, MONDAY, False,
     "service tier is unknown, so not one of tier-1"),
    ("tier other", {"service_tiers": ["tier-1", "tier-2"]}, {}, "tier-3", MONDAY, False,
     "service tier tier-3 is not one of tier-1, tier-2"),
    ("no customers", {"customer_tiers": ["enterprise"]}, {}, None, MONDAY, False,
     "no affected customer tier is reported, so none of enterprise"),
    ("other customers", {"customer_tiers": ["enterprise"]}, {"customer_tiers": ["free", "pro"]},
     None, MONDAY, False, "affected customer tiers free, pro include none of enterprise"),
    ("customers overlap", {"customer_tiers": ["enterprise", "pro"]},
     {"customer_tiers": ["pro", "free", "enterprise"]}, None, MONDAY, True,
     "affected customer tiers include pro, enterprise"),
    ("during miss", {"during": ["weekdays"]}, {}, None, SATURDAY, False,
     "12:00 UTC is not within weekdays"),
    ("during miss, two zones", {"during": ["weekdays", "ny-morning"]}, {}, None,
     utc(2026, 3, 7, 11), False,
     "11:00 UTC is not within weekdays; 06:00 America/New_York is not within ny-morning"),
    ("during, second interval", {"during": ["weekdays", "ny-morning"]}, {}, None,
     utc(2026, 3, 7, 14), True, "09:00 America/New_York is within ny-morning"),
    ("outside miss", {"outside": ["weekdays", "weekend"]}, {}, None, SATURDAY, False,
     "12:00 UTC is within weekend"),
    ("outside both", {"outside": ["weekend", "ny-morning"]}, {}, None, utc(2026, 3, 9, 18),
     True, "18:00 UTC is outside weekend; 14:00 America/New_York is outside ny-morning"),
    ("data loss wanted", {"data_loss": True}, {}, None, MONDAY, False,
     "no data loss is reported"),
    ("no data loss wanted", {"data_loss": False}, {"data_loss": True}, None, MONDAY, False,
     "data loss is reported"),
    ("no data loss holds", {"data_loss": False}, {}, None, MONDAY, True,
     "no data loss is reported"),
    ("security wanted", {"security": True}, {}, None, MONDAY, False,
     "no security impact is reported"),
    ("security holds", {"security": True}, {"security": True}, None, MONDAY, True,
     "a security impact is reported"),
    ("impact below", {"impact_at_least": "full_outage"}, {"impact": "partial_outage"}, None,
     MONDAY, False, "impact partial_outage is below full_outage"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("when", "facts", "service_tier", "at", "matched", "reason"),
    [pytest.param(*case[1:], id=case[0]) for case in CONDITION_CASES],
)
def test_condition_reason(
    when: dict[str, Any],
    facts: dict[str, Any],
    service_tier: str | None,
    at: datetime,
    matched: bool,
    reason: str,
) -> None:
    decision = classify(
        policy(("r", when, "SEV1"), default="SEV4"),
        ImpactFacts.model_validate(facts),
        service_tier=service_tier,
        at=at,
    )
    if matched:
        expected = SeverityDecision(severity=Severity.SEV1, rule="r", reasons=[reason])
    else:
        expected = SeverityDecision(
            severity=Severity.SEV4,
            rule=None,
            reasons=[
                f"rule 'r' did not match: {reason}",
                "no rule matched, so the default SEV4 applies",
            ],
        )
    assert decision == expected


def test_first_failing_condition_stops_the_rule() -> None:
    when = {"impact_at_least": "degraded", "service_tiers": ["tier-1"], "security": True}
    decision = classify(
        policy(("r", when, "SEV1")),
        ImpactFacts(impact=ImpactLevel.DEGRADED),
        service_tier="tier-2",
        at=MONDAY,
    )
    assert decision.reasons[0] == "rule 'r' did not match: service tier tier-2 is not one of tier-1"


def test_naive_datetime_rejected() -> None:
    with pytest.raises(
        ValueError, match=re.escape("at must be timezone-aware, got naive 2026-03-09T12:00:00")
    ):
        classify(DEFAULT, ImpactFacts(), service_tier=None, at=datetime(2026, 3, 9, 12))


# --- round trip and validation ----------------------------------------------------------


@pytest.mark.parametrize("value", [DEFAULT, MARKET], ids=["default", "market"])
def test_policy_round_trips_through_json(value: SeverityPolicy) -> None:
    dumped = value.model_dump(mode="json")
    assert SeverityPolicy.model_validate(dumped) == value
    assert SeverityPolicy.model_validate(dumped).model_dump(mode="json") == dumped


def test_decision_round_trips_through_json() -> None:
    decision = classify(
        MARKET, ImpactFacts(impact=ImpactLevel.DEGRADED), service_tier=None, at=NOON
    )
    assert SeverityDecision.model_validate_json(decision.model_dump_json()) == decision


def test_policy_defaults() -> None:
    assert SeverityPolicy() == SeverityPolicy(default=Severity.SEV3, rules=[], time_intervals=[])


MARKET_HOURS = {"name": "market-hours", "time_intervals": [{"weekdays": ["monday:friday"]}]}


def rules(*items: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Build SEV1 rules from (name, when) pairs."""
    return [{"name": n, "when": w, "severity": "SEV1"} for n, w in items]


# (model, input, error location, pydantic's message)
INVALID: list[tuple[str, type[BaseModel], dict[str, Any], tuple[str | int, ...], str]] = [
    ("unknown interval in during", SeverityPolicy,
     {"time_intervals": [MARKET_HOURS], "rules": rules(("open", {"during": ["market-hour"]}))},
     (), "Value error, rules: rule 'open' uses unknown time interval 'market-hour' in during"),
    ("unknown interval in outside", SeverityPolicy,
     {"rules": rules(("ok", {}), ("closed", {"outside": ["market-hours"]}))},
     (), "Value error, rules: rule 'closed' uses unknown time interval 'market-hours' in outside"),
    ("duplicate rule names", SeverityPolicy, {"rules": rules(("a", {}), ("b", {}), ("a", {}))},
     (), "Value error, rules: duplicate rule name 'a'"),
    ("duplicate interval names", SeverityPolicy,
     {"time_intervals": [MARKET_HOURS, MARKET_HOURS]},
     (), "Value error, time_intervals: duplicate name 'market-hours'"),
    ("unknown policy key", SeverityPolicy, {"rulez": []}, ("rulez",),
     "Extra inputs are not permitted"),
    ("unknown rule key", SeverityPolicy,
     {"rules": [{"name": "a", "when": {}, "severity": "SEV1", "continue": True}]},
     ("rules", 0, "continue"), "Extra inputs are not permitted"),
    ("unknown condition key", SeverityPolicy, {"rules": rules(("a", {"impact": "degraded"}))},
     ("rules", 0, "when", "impact"), "Extra inputs are not permitted"),
    ("unknown facts key", ImpactFacts, {"impact": "degraded", "region": "eu"}, ("region",),
     "Extra inputs are not permitted"),
    ("bad severity", SeverityPolicy, {"default": "SEV5"}, ("default",),
     "Input should be 'SEV1', 'SEV2', 'SEV3' or 'SEV4'"),
    ("bad impact", ImpactFacts, {"impact": "meltdown"}, ("impact",),
     "Input should be 'none', 'degraded', 'partial_outage' or 'full_outage'"),
    ("empty during", SeverityPolicy, {"rules": rules(("a", {"during": []}))},
     ("rules", 0, "when", "during"), "Value error, during: must not be empty; omit it to not care"),
    ("empty service tiers", SeverityPolicy, {"rules": rules(("a", {"service_tiers": []}))},
     ("rules", 0, "when", "service_tiers"),
     "Value error, service_tiers: must not be empty; omit it to not care"),
    ("unnamed rule", SeverityPolicy, {"rules": rules(("", {}))}, ("rules", 0, "name"),
     "String should have at least 1 character"),
    ("bad interval inside policy", SeverityPolicy,
     {"time_intervals": [{"name": "x", "time_intervals": [{"weekdays": ["funday"]}]}]},
     ("time_intervals", 0, "time_intervals", 0, "weekdays"),
     "Value error, weekdays: 'funday' is not a weekday"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "data", "loc", "message"),
    [pytest.param(m, d, loc, msg, id=name) for name, m, d, loc, msg in INVALID],
)
def test_invalid_policy(
    model: type[BaseModel], data: dict[str, Any], loc: tuple[str | int, ...], message: str
) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)) as caught:
        model.model_validate(data)
    assert [(e["loc"], e["msg"]) for e in caught.value.errors()] == [(loc, message)]

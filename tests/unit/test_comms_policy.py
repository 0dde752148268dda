"""Stakeholder communication rules: redaction, templates, defaults, cadence, limits, config."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from worker.config import FirelineConfig
from workflows import comms_policy as policy
from workflows.contracts import (
    Audience,
    AudiencePolicy,
    CommsSnapshot,
    ComponentStatus,
    IncidentStatus,
    PublicStatus,
    SizeLimit,
    StakeholderUpdate,
    StatusImpact,
)
from workflows.severity import Severity

RULES = policy.BUILTIN_RULES
T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rule", "text", "expected"),
    [
        ("email", "write to alice@example.com now", "write to [email] now"),
        ("card_number", "card 4111 1111 1111 1111 declined", "card [card] declined"),
        ("card_number", "card 4111-1111-1111-1111", "card [card]"),
        ("iban", "IBAN DE89 3704 0044 0532 0130 00 bounced", "IBAN [account] bounced"),
        ("account_number", "account 99887766 is locked", "[account] is locked"),
        ("account_number", "acct #AB-1234 is locked", "[account] is locked"),
        ("patient_id", "MRN 1234567 chart missing", "[patient] chart missing"),
        ("patient_id", "patient id: A-99231 again", "[patient] again"),
        ("ssn", "SSN 123-45-6789", "SSN [ssn]"),
        ("ip_address", "from 10.0.12.7 only", "from [ip] only"),
        ("phone", "call +1 (555) 010-9999", "call [phone]"),
    ],
)
def test_builtin_rules_find_the_identifiers_they_name(rule: str, text: str, expected: str) -> None:
    assert policy.redact(text, [RULES[rule]]) == expected


def test_redaction_leaves_ordinary_words_and_numbers_alone() -> None:
    text = "Error rate 4.2% for 15 minutes on checkout v1.4.0 in eu-west-1"
    assert policy.redact(text, RULES.values()) == text


def test_render_redacts_every_field_before_the_template() -> None:
    audience = AudiencePolicy(
        template="[{severity}] {title}: {text}", redact=[RULES["patient_id"], RULES["email"]]
    )
    fields = {"severity": "SEV1", "title": "EHR down for MRN 555123", "text": "ask bob@example.com"}
    assert policy.render(audience, fields) == "[SEV1] EHR down for [patient]: ask [email]"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{text}", None),
        ("{incident_id} {title} {service} {severity} {status} {impact} {components}", None),
        ("{customer_name}", "unknown placeholder {customer_name}"),
        ("{0}", "unknown placeholder {0}"),
        ("{text", "not a valid template"),
    ],
)
def test_template_problems_name_the_placeholder(template: str, problem: str | None) -> None:
    problems = policy.template_problems(template)
    if problem is None:
        assert problems == []
    else:
        assert problem in problems[0]


def test_defaults_follow_the_incident() -> None:
    assert policy.public_status_for(IncidentStatus.DECLARED) is PublicStatus.INVESTIGATING
    assert policy.public_status_for(IncidentStatus.MITIGATED) is PublicStatus.MONITORING
    assert policy.public_status_for(IncidentStatus.RESOLVED) is PublicStatus.RESOLVED
    assert policy.impact_for(Severity.SEV1) is StatusImpact.CRITICAL
    assert policy.impact_for(Severity.SEV4) is StatusImpact.NONE
    snap = CommsSnapshot(components=["checkout", "payments-api"])
    assert policy.components_for(snap, Severity.SEV2, PublicStatus.INVESTIGATING, None) == {
        "checkout": ComponentStatus.PARTIAL_OUTAGE,
        "payments-api": ComponentStatus.PARTIAL_OUTAGE,
    }
    said = StakeholderUpdate(
        id="INC-1-u1",
        at=T0,
        actor="alice",
        text="x",
        status=PublicStatus.IDENTIFIED,
        impact=StatusImpact.MINOR,
        components={"website": ComponentStatus.DEGRADED_PERFORMANCE},
    )
    # What was last said wins over the service's mapping; resolution clears it.
    assert policy.components_for(snap, Severity.SEV1, PublicStatus.IDENTIFIED, said) == {
        "website": ComponentStatus.DEGRADED_PERFORMANCE
    }
    assert policy.components_for(snap, Severity.SEV1, PublicStatus.RESOLVED, said) == {
        "website": ComponentStatus.OPERATIONAL
    }


def test_the_next_update_is_due_a_cadence_after_the_last_one() -> None:
    snap = CommsSnapshot(cadence={Severity.SEV1: timedelta(minutes=30)})
    due = policy.next_update_due(snap, Severity.SEV1, IncidentStatus.DECLARED, T0, [])
    assert due == T0 + timedelta(minutes=30)
    said = StakeholderUpdate(
        id="u1",
        at=T0 + timedelta(minutes=12),
        actor="alice",
        text="x",
        status=PublicStatus.INVESTIGATING,
        impact=StatusImpact.MAJOR,
    )
    due = policy.next_update_due(snap, Severity.SEV1, IncidentStatus.MITIGATED, T0, [said])
    assert due == T0 + timedelta(minutes=42)
    assert policy.next_update_due(snap, Severity.SEV3, IncidentStatus.DECLARED, T0, []) is None
    assert policy.next_update_due(snap, Severity.SEV1, IncidentStatus.RESOLVED, T0, []) is None
    assert policy.next_update_due(None, Severity.SEV1, IncidentStatus.DECLARED, T0, []) is None


def test_a_too_long_update_names_the_limit_and_whose_it_is() -> None:
    snap = CommsSnapshot(
        limits={Audience.CUSTOMERS: SizeLimit(chars=25_000, vendor="Atlassian Statuspage")}
    )
    problem = policy.limit_problem(snap, "x" * 25_001, [Audience.CUSTOMERS])
    assert "25,001 characters" in problem
    assert "Atlassian Statuspage accepts at most 25,000" in problem
    assert policy.limit_problem(snap, "x" * 25_001, [Audience.RESPONDERS]) == ""
    assert policy.limit_problem(snap, "x" * 25_000, [Audience.CUSTOMERS]) == ""


def _config(communications: dict[str, object]) -> FirelineConfig:
    return FirelineConfig.model_validate(
        {
            "users": {
                "alice": {"name": "Alice", "email": "alice@example.com", "slack": "U0ALICE"},
                "dana": {
                    "name": "Dana",
                    "email": "dana@example.com",
                    "contact_methods": [
                        {"kind": "pagerduty"},
                        {"kind": "email", "address": "dana@example.com"},
                    ],
                },
            },
            "communications": communications,
        }
    )


def test_the_config_becomes_the_incident_snapshot() -> None:
    config = _config(
        {
            "cadence": {"SEV1": "15m"},
            "redaction_rules": {"order_id": {"pattern": r"ORD-\d+", "replacement": "[order]"}},
            "audiences": {
                "executives": {"recipients": ["dana"], "redact": ["patient_id"]},
                "customers": {"template": "{text}", "redact": ["email", "order_id"]},
            },
        }
    )
    snap = config.comms_snapshot("checkout")
    assert snap is not None
    assert snap.cadence == {Severity.SEV1: timedelta(minutes=15)}
    assert snap.chat_ids == {"alice": "U0ALICE"}
    # Reminders and executive updates skip the pager for the mailbox.
    assert snap.contacts["dana"].kind.value == "email"
    assert snap.contacts["alice"].kind.value == "console"
    executives = snap.audiences[Audience.EXECUTIVES]
    assert list(executives.recipients) == ["dana"]
    assert [r.name for r in executives.redact] == ["patient_id"]
    customers = snap.audiences[Audience.CUSTOMERS]
    rendered = policy.render(customers, {"text": "ORD-991 for bob@example.com"})
    assert rendered == "[order] for [email]"
    # Responders read the incident as it is.
    assert snap.audiences[Audience.RESPONDERS].redact == []


def test_customers_get_every_builtin_redaction_unless_configured() -> None:
    snap = _config({}).comms_snapshot("checkout")
    assert snap is not None
    names = [r.name for r in snap.audiences[Audience.CUSTOMERS].redact]
    assert {"email", "patient_id", "account_number", "card_number"} <= set(names)


@pytest.mark.parametrize(
    ("communications", "message"),
    [
        (
            {"audiences": {"customers": {"template": "{customer}"}}},
            "audiences.customers.template: unknown placeholder {customer}",
        ),
        (
            {"audiences": {"customers": {"redact": ["mrn"]}}},
            "audiences.customers.redact: unknown rule 'mrn'",
        ),
        (
            {"redaction_rules": {"bad": {"pattern": "(unclosed"}}},
            "redaction_rules.bad.pattern: not a valid regular expression",
        ),
        (
            {"redaction_rules": {"empty": {"pattern": "x*"}}},
            "redaction_rules.empty.pattern: matches the empty string",
        ),
        (
            {"audiences": {"customers": {"recipients": ["alice"]}}},
            "audiences.customers.recipients: only executives have recipients",
        ),
        (
            {"audiences": {"executives": {"recipients": ["zed"]}}},
            "communications.audiences.executives.recipients[0]: unknown user 'zed'",
        ),
        ({"cadence": {"SEV1": "0s"}}, "cadence.SEV1: must be longer than 0s"),
    ],
)
def test_bad_communications_config_is_refused_naming_the_field(
    communications: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _config(communications)
    assert message in str(refused.value)

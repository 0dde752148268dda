"""Pure rules for stakeholder communications: defaults, templates, redaction, cadence.

Deterministic and free of I/O, so the incident workflow applies them while it runs and
replays, and the config loader uses the same code to refuse a bad template or pattern.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Mapping
from datetime import datetime

from workflows.contracts import (
    Audience,
    AudiencePolicy,
    CommsSnapshot,
    ComponentStatus,
    IncidentStatus,
    PublicStatus,
    RedactionRule,
    StakeholderUpdate,
    StatusImpact,
)
from workflows.severity import Severity

# Built-in redaction rules an audience names in config. Patterns are deliberately broad:
# a false positive costs a "[redacted]" in a customer update; a miss leaks a patient or an
# account into a public page.
BUILTIN_RULES: dict[str, RedactionRule] = {
    rule.name: rule
    for rule in (
        RedactionRule(
            name="email",
            pattern=r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}",
            replacement="[email]",
        ),
        # 13 to 19 digits, optionally grouped by spaces or dashes: card numbers (PCI DSS).
        RedactionRule(
            name="card_number",
            pattern=r"\b(?:\d[ -]?){12,18}\d\b",
            replacement="[card]",
        ),
        RedactionRule(
            name="iban",
            pattern=r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            replacement="[account]",
        ),
        # "account 12345678", "acct #1234-5678": an account identifier after its word.
        RedactionRule(
            name="account_number",
            pattern=r"(?i)\b(?:account|acct)\b[\s#:no.]*[A-Z0-9][A-Z0-9-]{3,}",
            replacement="[account]",
        ),
        # Medical record numbers: "MRN 1234567", "MRN: A-12345" (HIPAA identifier).
        RedactionRule(
            name="patient_id",
            pattern=r"(?i)\b(?:MRN|patient(?:\s+id)?)\b[\s#:]*[A-Z0-9][A-Z0-9-]{3,}",
            replacement="[patient]",
        ),
        RedactionRule(
            name="ssn",
            pattern=r"\b\d{3}-\d{2}-\d{4}\b",
            replacement="[ssn]",
        ),
        RedactionRule(
            name="ip_address",
            pattern=r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
            replacement="[ip]",
        ),
        RedactionRule(
            name="phone",
            pattern=r"\+\d[\d ()-]{7,}\d",
            replacement="[phone]",
        ),
    )
}

# Placeholders an audience template may use.
TEMPLATE_FIELDS = frozenset(
    {"incident_id", "title", "service", "severity", "status", "impact", "text", "components"}
)

_IMPACT_BY_SEVERITY = {
    Severity.SEV1: StatusImpact.CRITICAL,
    Severity.SEV2: StatusImpact.MAJOR,
    Severity.SEV3: StatusImpact.MINOR,
    Severity.SEV4: StatusImpact.NONE,
}
_COMPONENT_BY_SEVERITY = {
    Severity.SEV1: ComponentStatus.MAJOR_OUTAGE,
    Severity.SEV2: ComponentStatus.PARTIAL_OUTAGE,
    Severity.SEV3: ComponentStatus.DEGRADED_PERFORMANCE,
    Severity.SEV4: ComponentStatus.DEGRADED_PERFORMANCE,
}


def template_problems(template: str) -> list[str]:
    """What is wrong with an audience template (unknown or positional placeholders)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        return [f"not a valid template: {exc}"]
    problems = []
    for _, field, _, _ in parsed:
        if field is None:
            continue
        if field not in TEMPLATE_FIELDS:
            known = ", ".join(sorted(TEMPLATE_FIELDS))
            problems.append(f"unknown placeholder {{{field}}} (known: {known})")
    return problems


def pattern_problem(pattern: str) -> str | None:
    """Why a custom redaction pattern is unusable, or None."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return f"not a valid regular expression: {exc}"
    if compiled.fullmatch(""):
        return "matches the empty string, which would redact nothing useful"
    return None


def redact(text: str, rules: Iterable[RedactionRule]) -> str:
    """``text`` with every match of every rule replaced."""
    for rule in rules:
        text = re.sub(rule.pattern, rule.replacement, text)
    return text


def render(policy: AudiencePolicy, fields: Mapping[str, str]) -> str:
    """The audience's copy: every field is redacted before it enters the template.

    Redacting the fields (not only the result) keeps a template's own words intact and
    catches identifiers in the title as well as the text.
    """
    clean = {name: redact(value, policy.redact) for name, value in fields.items()}
    return redact(policy.template.format_map(clean), policy.redact)


def public_status_for(status: IncidentStatus) -> PublicStatus:
    """What customers read for an incident status, unless the author says otherwise."""
    if status is IncidentStatus.MITIGATED:
        return PublicStatus.MONITORING
    if status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
        return PublicStatus.RESOLVED
    return PublicStatus.INVESTIGATING


def impact_for(severity: Severity) -> StatusImpact:
    """The default customer impact of a severity."""
    return _IMPACT_BY_SEVERITY[severity]


def component_status_for(severity: Severity) -> ComponentStatus:
    """The default status of an affected component at a severity."""
    return _COMPONENT_BY_SEVERITY[severity]


def components_for(
    snapshot: CommsSnapshot,
    severity: Severity,
    status: PublicStatus,
    last: StakeholderUpdate | None,
) -> dict[str, ComponentStatus]:
    """Affected components when the author names none: as last said, else the service's."""
    if last is not None and last.components:
        base = dict(last.components)
    else:
        base = {c: component_status_for(severity) for c in snapshot.components}
    if status is PublicStatus.RESOLVED:
        return dict.fromkeys(base, ComponentStatus.OPERATIONAL)
    return base


def next_update_due(
    snapshot: CommsSnapshot | None,
    severity: Severity,
    status: IncidentStatus,
    declared_at: datetime,
    updates: list[StakeholderUpdate],
) -> datetime | None:
    """When stakeholders must next hear from an open, unresolved incident (None: never)."""
    if snapshot is None or status in (IncidentStatus.RESOLVED, IncidentStatus.CLOSED):
        return None
    every = snapshot.cadence.get(severity)
    if every is None:
        return None
    last = updates[-1].at if updates else declared_at
    return last + every


def limit_problem(snapshot: CommsSnapshot | None, text: str, audiences: list[Audience]) -> str:
    """Why ``text`` is too long for one of its audiences' channels ('' when it fits)."""
    if snapshot is None:
        return ""
    for audience in audiences:
        limit = snapshot.limits.get(audience)
        if limit is not None and len(text) > limit.chars:
            return (
                f"the update is {len(text):,} characters; {limit.vendor} accepts at most "
                f"{limit.chars:,} for {audience.value}: shorten it or leave {audience.value} out"
            )
    return ""

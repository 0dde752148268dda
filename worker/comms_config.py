"""The ``communications:`` section of fireline.yaml: update cadence, audiences, redaction.

Loaded with the rest of the config, so a bad template, an unknown redaction rule or an
unknown recipient is refused at start, naming the field, instead of at 3 a.m. when the
first update goes out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workflows.comms_policy import BUILTIN_RULES, pattern_problem, template_problems
from workflows.contracts import Audience, RedactionRule
from workflows.durations import Duration
from workflows.severity import Severity

# What a customer may read when nobody configured anything: every identifier fireline
# knows how to find is taken out.
CUSTOMER_DEFAULT_REDACTION = [
    "email",
    "card_number",
    "iban",
    "account_number",
    "patient_id",
    "ssn",
    "ip_address",
    "phone",
]
DEFAULT_TEMPLATES = {
    Audience.RESPONDERS: "{incident_id} update ({status}): {text}",
    Audience.EXECUTIVES: (
        "{incident_id} [{severity}] {title}\nStatus: {status}, customer impact: {impact}\n\n{text}"
    ),
    Audience.CUSTOMERS: "{text}",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomRule(_Strict):
    """A redaction pattern of your own (a Python regular expression)."""

    pattern: str
    replacement: str = "[redacted]"


class AudienceConfig(_Strict):
    """How one audience hears about incidents."""

    template: str | None = None
    # Built-in rule names (email, card_number, iban, account_number, patient_id, ssn,
    # ip_address, phone) or names under ``communications.redaction_rules``.
    redact: list[str] | None = None
    # Executives: fireline users who receive every update.
    recipients: list[str] = Field(default_factory=list)


class Communications(_Strict):
    """Stakeholder update cadence, audiences and their redaction."""

    cadence: dict[Severity, Duration] = Field(
        default_factory=lambda: {
            Severity.SEV1: timedelta(minutes=30),
            Severity.SEV2: timedelta(minutes=60),
        }
    )
    overdue_after: Duration = timedelta(minutes=10)
    resolved_text: str = Field(default="This incident has been resolved.", min_length=1)
    redaction_rules: dict[str, CustomRule] = Field(default_factory=dict)
    audiences: dict[Audience, AudienceConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> Self:
        problems: list[str] = []
        for name, rule in self.redaction_rules.items():
            problem = pattern_problem(rule.pattern)
            if problem:
                problems.append(f"redaction_rules.{name}.pattern: {problem}")
            if name in BUILTIN_RULES:
                problems.append(f"redaction_rules.{name}: shadows the built-in rule '{name}'")
        for audience, cfg in self.audiences.items():
            where = f"audiences.{audience.value}"
            if cfg.template is not None:
                problems.extend(f"{where}.template: {p}" for p in template_problems(cfg.template))
            for name in cfg.redact or []:
                if name not in BUILTIN_RULES and name not in self.redaction_rules:
                    known = ", ".join(sorted([*BUILTIN_RULES, *self.redaction_rules]))
                    problems.append(f"{where}.redact: unknown rule '{name}' (known: {known})")
            if cfg.recipients and audience is not Audience.EXECUTIVES:
                problems.append(f"{where}.recipients: only executives have recipients")
        for severity, every in self.cadence.items():
            if every <= timedelta(0):
                problems.append(f"cadence.{severity.value}: must be longer than 0s")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def rules(self, audience: Audience) -> list[RedactionRule]:
        """The redaction an audience gets, in the order configured."""
        cfg = self.audiences.get(audience)
        names = cfg.redact if cfg and cfg.redact is not None else None
        if names is None:
            names = CUSTOMER_DEFAULT_REDACTION if audience is Audience.CUSTOMERS else []
        out = []
        for name in names:
            if name in BUILTIN_RULES:
                out.append(BUILTIN_RULES[name])
            else:
                custom = self.redaction_rules[name]
                out.append(
                    RedactionRule(name=name, pattern=custom.pattern, replacement=custom.replacement)
                )
        return out

    def template(self, audience: Audience) -> str:
        """The audience's template, or the default for it."""
        cfg = self.audiences.get(audience)
        return cfg.template if cfg and cfg.template else DEFAULT_TEMPLATES[audience]

"""fireline.yaml: the people, services and policies an incident response depends on.

Loaded once at start and validated whole: unknown keys are rejected, references (a team's
members, a service's owner and dependencies, a token's user) must exist, and every problem
is reported with the file and the dotted path of the field, so a typo fails at start-up and
not during an incident.

Exceptions::

    ConfigError (ValueError)    the file is missing, unreadable, not YAML, or invalid
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from workflows.contracts import (
    ConfigSnapshot,
    IncidentSettings,
    ServiceRef,
    SeverityPolicy,
    UserRef,
)
from workflows.durations import Duration
from workflows.severity import default_policy


class ConfigError(ValueError):
    """fireline.yaml cannot be used; the message lists every problem found."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class User(_Strict):
    """A person who responds to incidents."""

    name: str
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    slack: str | None = None
    phone: str | None = None


class Team(_Strict):
    """A team that owns services."""

    members: list[str] = Field(default_factory=list)
    manager: str | None = None


class Service(_Strict):
    """A service catalog entry."""

    owner_team: str | None = None
    tier: str | None = None
    description: str = ""
    components: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)
    customer_tiers: list[str] = Field(default_factory=list)


class ApiToken(_Strict):
    """A bearer token for the API, mapped to a user. The secret is never in the file."""

    user: str
    # One of: the token's SHA-256 (safe to commit), an environment variable, or a file.
    token_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    token_env: str | None = None
    token_file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [self.token_sha256, self.token_env, self.token_file]
        if sum(s is not None for s in sources) != 1:
            raise ValueError("give exactly one of token_sha256, token_env, token_file")
        return self


class Auth(_Strict):
    """API authentication. No tokens means local mode (loopback only)."""

    tokens: list[ApiToken] = Field(default_factory=list)


class IncidentDefaults(_Strict):
    """How incidents behave."""

    reopen_window: Duration = timedelta(hours=1)


class FirelineConfig(_Strict):
    """The whole of fireline.yaml."""

    users: dict[str, User] = Field(default_factory=dict)
    teams: dict[str, Team] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    auth: Auth = Field(default_factory=Auth)
    severity_policy: SeverityPolicy = Field(default_factory=default_policy)
    incidents: IncidentDefaults = Field(default_factory=IncidentDefaults)

    @model_validator(mode="after")
    def _references_exist(self) -> Self:
        problems = list(self._dangling_references())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _dangling_references(self) -> Iterable[str]:
        def missing(kind: str, known: Iterable[str], name: str, where: str) -> Iterable[str]:
            if name not in known:
                yield f"{where}: unknown {kind} '{name}'"

        for team_name, team in self.teams.items():
            for i, member in enumerate(team.members):
                yield from missing("user", self.users, member, f"teams.{team_name}.members[{i}]")
            if team.manager:
                yield from missing("user", self.users, team.manager, f"teams.{team_name}.manager")
        for svc_name, svc in self.services.items():
            if svc.owner_team:
                yield from missing(
                    "team", self.teams, svc.owner_team, f"services.{svc_name}.owner_team"
                )
            for i, dep in enumerate(svc.depends_on):
                yield from missing(
                    "service", self.services, dep, f"services.{svc_name}.depends_on[{i}]"
                )
        for i, token in enumerate(self.auth.tokens):
            yield from missing("user", self.users, token.user, f"auth.tokens[{i}].user")

    def snapshot(self, service: str) -> ConfigSnapshot:
        """The frozen slice of config an incident on ``service`` runs with."""
        svc = self.services.get(service)
        return ConfigSnapshot(
            users={
                handle: UserRef(handle=handle, name=u.name, email=u.email)
                for handle, u in self.users.items()
            },
            service=ServiceRef(name=service, **svc.model_dump()) if svc else None,
            severity_policy=self.severity_policy,
            settings=IncidentSettings(reopen_window=self.incidents.reopen_window),
        )

    def token_user(self, token: str) -> str | None:
        """The user a bearer token belongs to, or None. Constant-time comparison."""
        digest = hashlib.sha256(token.encode()).hexdigest()
        for entry in self.auth.tokens:
            expected = _expected_digest(entry)
            if expected is not None and hmac.compare_digest(digest, expected):
                return entry.user
        return None


def _expected_digest(entry: ApiToken) -> str | None:
    if entry.token_sha256:
        return entry.token_sha256
    secret = _read_secret(entry)
    return hashlib.sha256(secret.get_secret_value().encode()).hexdigest() if secret else None


def _read_secret(entry: ApiToken) -> SecretStr | None:
    if entry.token_env:
        value = os.environ.get(entry.token_env)
        return SecretStr(value) if value else None
    if entry.token_file:
        return SecretStr(entry.token_file.read_text().strip())
    return None


def load_config(path: Path | None) -> FirelineConfig:
    """Load and validate ``path``; no path means an empty config with default policies."""
    if path is None:
        return FirelineConfig()
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        config = FirelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc)) from None
    for i, token in enumerate(config.auth.tokens):
        if token.token_env and not os.environ.get(token.token_env):
            raise ConfigError(
                f"{path}: auth.tokens[{i}].token_env: environment variable "
                f"{token.token_env} is not set"
            )
        if token.token_file and not token.token_file.is_file():
            raise ConfigError(
                f"{path}: auth.tokens[{i}].token_file: {token.token_file} does not exist"
            )
    return config


def format_validation_error(path: Path | str, exc: ValidationError) -> str:
    """One line per problem: ``file: dotted.path: message``."""
    lines = []
    for err in exc.errors():
        where = _dotted(err["loc"])
        if err["type"] == "extra_forbidden":
            message = f"unknown key '{err['loc'][-1]}'"
        else:
            message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{path}: {where}: {message}" if where else f"{path}: {message}")
    return "\n".join(lines)


def _dotted(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out

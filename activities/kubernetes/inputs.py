"""The ``with:`` inputs of each Kubernetes action, validated strictly.

Unknown keys are refused, so a misspelt ``to_revison`` fails the step instead of silently
rolling back to the default. Numbers may arrive as text (``"3"``) because a reference inside
a longer string is substituted as text; booleans are never numbers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from activities.contracts import ActionRequest
from activities.kubernetes.errors import InvalidActionInput
from workflows.durations import Duration, parse_duration


def _not_bool(value: Any) -> Any:
    # pydantic's lax mode reads true as 1; a replica count of "true" is a mistake.
    if isinstance(value, bool):
        raise ValueError("expected an integer, found a boolean")
    return value


# RFC 1123 label (namespaces) and subdomain (deployments, nodes), as the apiserver checks.
_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"

Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=_LABEL)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=_SUBDOMAIN)]
Revision = Annotated[int, BeforeValidator(_not_bool), Field(ge=1)]
Count = Annotated[int, BeforeValidator(_not_bool), Field(ge=0)]


class _Inputs(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeploymentInputs(_Inputs):
    """Inputs naming one Deployment."""

    namespace: Namespace
    deployment: ObjectName


class StatusInputs(DeploymentInputs):
    """``k8s.status``: the Deployment, and how many recent events to report."""

    events: Annotated[int, BeforeValidator(_not_bool), Field(ge=0, le=100)] = 10


class RollbackInputs(DeploymentInputs):
    """``k8s.rollback``: exactly one of ``to_revision`` and ``from_revision``."""

    # The revision to go back to (as numbered when it was deployed).
    to_revision: Revision | None = None
    # "The revision before this one": declarative, so a retry after success is a no-op.
    from_revision: Revision | None = None

    @model_validator(mode="after")
    def _exactly_one_target(self) -> Self:
        if (self.to_revision is None) == (self.from_revision is None):
            raise ValueError(
                "give exactly one of to_revision and from_revision "
                "(a rollback needs a declarative target, never 'one back')"
            )
        return self


class ScaleInputs(DeploymentInputs):
    """``k8s.scale``: the replica count to hold (a target, never a delta)."""

    replicas: Count


class RestartInputs(DeploymentInputs):
    """``k8s.restart``: the Deployment to restart (once per idempotency key)."""


class WaitRolloutInputs(DeploymentInputs):
    """``k8s.wait_rollout``: the rollout to wait for and for how long."""

    # Wait for this revision; another one taking over fails the wait.
    revision: Revision | None = None
    deadline: Duration = timedelta(minutes=10)

    @field_validator("deadline")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return value


class CordonInputs(_Inputs):
    """``k8s.cordon``: the node to mark unschedulable."""

    node: ObjectName


class RecentChangesInputs(_Inputs):
    """``k8s.recent_changes``: rollouts in these namespaces since a time or for a duration."""

    namespaces: list[Namespace] = Field(min_length=1)
    # RFC 3339 (``2025-01-01T12:00:00Z``) or a duration back from now (``2h``).
    since: str = Field(min_length=1)

    @field_validator("since")
    @classmethod
    def _time_or_duration(cls, value: str) -> str:
        since_time(value, datetime.now(UTC))
        return value


def since_time(value: str, now: datetime) -> datetime:
    """The instant ``value`` names: an RFC 3339 time, or ``now`` minus a duration."""
    text = value.strip()
    if re.fullmatch(r"[0-9]+(ms|[smhdwy])([0-9]+(ms|[smhdwy]))*", text):
        return now - parse_duration(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(
            f"'{value}' is neither an RFC 3339 time with an offset (2025-01-31T09:00:00Z) "
            "nor a duration (30m, 2h, 1d)"
        )
    return moment.astimezone(UTC)


InputsT = TypeVar("InputsT", bound=_Inputs)


def parse_inputs(action: str, model: type[InputsT], request: ActionRequest) -> InputsT:
    """Validate ``request.inputs``; refuse them with :class:`InvalidActionInput`."""
    try:
        return model.model_validate(request.inputs)
    except ValidationError as exc:
        problems = "; ".join(_describe(model, err) for err in exc.errors())
        raise InvalidActionInput(f"{action}: invalid inputs: {problems}") from None


def _describe(model: type[_Inputs], err: ErrorDetails) -> str:
    where = ".".join(str(part) for part in err["loc"])
    if err["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields)
        return f"{where}: unknown input (expected: {known})"
    message = str(err["msg"]).removeprefix("Value error, ")
    if not where:
        return message
    return f"{where}: {message}"

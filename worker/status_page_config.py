"""The ``status_page`` section of fireline.yaml: components, groups, maintenance, provider.

Validated at load like the rest of the config: unknown keys are rejected, ids are unique,
and every reference (a component's group, a maintenance entry's components, an Atlassian
component id for each component) must exist; messages name the field.

Example::

    status_page:
      provider: builtin            # or atlassian
      title: Example Shop Status
      public_url: https://status.example.com/status
      groups:
        - {id: shop, name: Shop}
      components:
        - id: checkout
          name: Checkout
          group: shop
          services: [checkout]
      maintenance:
        - title: Database upgrade
          components: [checkout]
          starts_at: 2026-12-01T02:00:00Z
          ends_at: 2026-12-01T03:00:00Z
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

# Not the public SecretRef: a secret fireline sends must be readable (env or file).
from worker.secrets import ReadableSecret as _ReadableSecret
from workflows.contracts import (
    Maintenance,
    PageComponent,
    PageGroup,
    StatusPageInput,
)

DEFAULT_STATUSPAGE_URL = "https://api.statuspage.io/v1"
_ID = r"^[a-z0-9][a-z0-9_-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusComponentConfig(_Strict):
    """A component customers see, and the fireline services whose incidents affect it."""

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    group: str | None = None
    # Incidents on these services affect this component.
    services: list[str] = Field(default_factory=list)
    # The component's id on Atlassian Statuspage (provider: atlassian).
    statuspage_id: str | None = None


class StatusGroupConfig(_Strict):
    """A group of components shown together."""

    id: str = Field(pattern=_ID)
    name: str = Field(min_length=1)


class MaintenanceConfig(_Strict):
    """A scheduled maintenance window; its components show under maintenance inside it."""

    # Default: derived from the title and start, so it stays stable across restarts.
    id: str | None = Field(default=None, pattern=_ID)
    title: str = Field(min_length=1, max_length=255)
    components: list[str] = Field(min_length=1)
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    body: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self

    def entry_id(self) -> str:
        """The configured id, or one derived from the title and start."""
        if self.id:
            return self.id
        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-") or "maintenance"
        return f"{slug}-{self.starts_at:%Y%m%d%H%M}"


class AtlassianStatuspage(_Strict):
    """Atlassian Statuspage: the page id and an API key (sent as ``Authorization: OAuth``)."""

    page_id: str = Field(min_length=1)
    api_key: _ReadableSecret
    base_url: str = Field(default=DEFAULT_STATUSPAGE_URL, pattern=r"^https?://")


class StatusPageConfig(_Strict):
    """The customer-facing status page and where it is published."""

    provider: Literal["builtin", "atlassian"] = "builtin"
    title: str = Field(default="Status", min_length=1)
    # Where customers read the page (links in the Atom feed and publication results).
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    components: list[StatusComponentConfig] = Field(default_factory=list)
    groups: list[StatusGroupConfig] = Field(default_factory=list)
    maintenance: list[MaintenanceConfig] = Field(default_factory=list)
    atlassian: AtlassianStatuspage | None = None

    @model_validator(mode="after")
    def _references_exist(self) -> Self:
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _problems(self) -> Iterable[str]:
        yield from _duplicates("components", [c.id for c in self.components])
        yield from _duplicates("groups", [g.id for g in self.groups])
        yield from _duplicates("maintenance", [m.entry_id() for m in self.maintenance])
        groups = {g.id for g in self.groups}
        components = {c.id for c in self.components}
        for i, component in enumerate(self.components):
            if component.group is not None and component.group not in groups:
                yield f"components[{i}].group: unknown group '{component.group}'"
        for i, entry in enumerate(self.maintenance):
            for j, name in enumerate(entry.components):
                if name not in components:
                    yield f"maintenance[{i}].components[{j}]: unknown component '{name}'"
        if self.provider == "atlassian":
            if self.atlassian is None:
                yield "atlassian: required when provider is atlassian"
            for i, component in enumerate(self.components):
                if not component.statuspage_id:
                    yield (
                        f"components[{i}].statuspage_id: required when provider is atlassian "
                        f"(component '{component.id}')"
                    )

    def maintenance_entries(self) -> list[Maintenance]:
        """The configured maintenance as the workflow records it."""
        return [
            Maintenance(
                id=m.entry_id(),
                title=m.title,
                components=list(m.components),
                starts_at=m.starts_at,
                ends_at=m.ends_at,
                body=m.body,
            )
            for m in self.maintenance
        ]

    def start_input(self, max_history_events: int | None = None) -> StatusPageInput:
        """The StatusPageWorkflow's input for this config."""
        return StatusPageInput(
            title=self.title,
            public_url=self.public_url,
            components=[
                PageComponent(id=c.id, name=c.name, description=c.description, group=c.group)
                for c in self.components
            ],
            groups=[PageGroup(id=g.id, name=g.name) for g in self.groups],
            maintenance=self.maintenance_entries(),
            max_history_events=max_history_events,
        )

    def statuspage_ids(self) -> dict[str, str]:
        """fireline component id → Atlassian Statuspage component id."""
        return {c.id: c.statuspage_id for c in self.components if c.statuspage_id}


def _duplicates(section: str, ids: list[str]) -> Iterable[str]:
    for name in sorted({i for i in ids if ids.count(i) > 1}):
        yield f"{section}: id '{name}' is used more than once"


def components_for_service(config: StatusPageConfig, service: str) -> list[str]:
    """The ids of the components an incident on ``service`` affects, in config order."""
    return [c.id for c in config.components if service in c.services]

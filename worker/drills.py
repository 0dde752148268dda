"""Drills: shipped alert scenarios responders play to practise (``fireline drill run``).

A scenario (``runbooks/drills/*.yaml``) is a list of alerts. Each is sent with the label
``drill="true"``, which every incident it declares carries: its title starts with
``[DRILL]`` and its timeline says so from the first entry, so nobody mistakes practice for
an outage, and reports and public pages can leave it out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows.contracts import DRILL_LABEL

# Every drill incident's title starts with this, in lists, pages and chat alike.
DRILL_TITLE = "[DRILL]"
DRILLS_DIR = Path(__file__).resolve().parents[1] / "runbooks" / "drills"


class DrillError(ValueError):
    """A drill scenario file cannot be used; the message names the file and field."""


class DrillAlert(BaseModel):
    """One alert of a scenario, as fireline's own alert endpoint takes it."""

    model_config = ConfigDict(extra="forbid")

    labels: dict[str, str] = Field(min_length=1)
    annotations: dict[str, str] = Field(default_factory=dict)


class DrillScenario(BaseModel):
    """A named list of alerts."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    alerts: list[DrillAlert] = Field(min_length=1)

    def payloads(self) -> list[dict[str, Any]]:
        """The alerts to POST to ``/v1/alerts``, each marked as a drill."""
        return [
            {
                "labels": {**alert.labels, DRILL_LABEL: "true"},
                "annotations": alert.annotations,
                "status": "firing",
            }
            for alert in self.alerts
        ]


def load_drills(directory: Path = DRILLS_DIR) -> dict[str, DrillScenario]:
    """Every scenario in ``directory`` by name; DrillError names the file and field."""
    found: dict[str, DrillScenario] = {}
    for path in sorted(directory.glob("*.yaml")):
        try:
            scenario = DrillScenario.model_validate(yaml.safe_load(path.read_text()))
        except yaml.YAMLError as exc:
            raise DrillError(f"{path}: not YAML: {exc}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise DrillError(f"{path}: {problems}") from None
        if scenario.name != path.stem:
            raise DrillError(f"{path}: name: '{scenario.name}' must match the file name")
        found[scenario.name] = scenario
    return found


def is_drill(labels: dict[str, str]) -> bool:
    """Whether alerts with these labels belong to a drill."""
    return labels.get(DRILL_LABEL) == "true"

"""Where runbooks come from, which ones fit an alert, and the parameters an alert supplies.

The library is one directory of ``*.yaml`` files (``FIRELINE_RUNBOOKS_DIR``; default the
library shipped in the ``runbooks`` package), loaded and validated whole when a process
starts, so a broken runbook stops the start-up rather than an incident.

Exceptions (from ``runbooks``)::

    RunbookLoadError (ValueError)   a runbook is invalid; one line per problem
    ParameterError (ValueError)     parameters do not fit a runbook's declarations
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import JsonValue

import runbooks
from runbooks.loader import load_runbooks
from runbooks.schema import Runbook
from runbooks.substitution import resolve_parameters
from worker.action_registry import KNOWN_ACTIONS
from worker.settings import Settings
from workflows.matchers import match_all

SHIPPED_RUNBOOKS = Path(runbooks.__file__).resolve().parent
"""The runbook library that ships with fireline."""


def library_dir(settings: Settings) -> Path:
    """The directory the library is read from."""
    return settings.runbooks_dir or SHIPPED_RUNBOOKS


def load_library(settings: Settings) -> dict[str, Runbook]:
    """Every runbook of the library by name; RunbookLoadError lists each problem."""
    return load_runbooks([library_dir(settings)], known_actions=KNOWN_ACTIONS)


def matching(library: Mapping[str, Runbook], labels: Mapping[str, str]) -> list[Runbook]:
    """Runbooks whose ``match`` matchers all hold for ``labels``, by name.

    A runbook without matchers is for runs started by hand: offering it for every alert
    would bury the ones written for that alert.
    """
    return [
        library[name]
        for name in sorted(library)
        if library[name].match and match_all(library[name].match, labels)
    ]


def params_from_alert(
    runbook: Runbook, labels: Mapping[str, str], explicit: Mapping[str, object]
) -> dict[str, JsonValue]:
    """Typed parameters: ``explicit`` first, then alert labels named like a parameter, then
    defaults; ParameterError names every parameter that does not fit."""
    supplied: dict[str, object] = {
        name: labels[name] for name in runbook.parameters if name in labels
    }
    supplied.update(explicit)
    return resolve_parameters(runbook.parameters, supplied)

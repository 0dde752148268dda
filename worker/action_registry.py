"""The action names runbook steps may use: every action the worker can run for them.

Each name comes from the code that implements it: the activity modules' ``ACTION_NAMES`` and
``page``, which the RunbookWorkflow handles itself (it escalates the incident).
"""

from __future__ import annotations

from activities.http_actions import ACTION_NAMES as HTTP_ACTION_NAMES
from activities.kubernetes.actions import ACTION_NAMES as KUBERNETES_ACTION_NAMES
from workflows.runbook import PAGE

KNOWN_ACTIONS: frozenset[str] = frozenset((*KUBERNETES_ACTION_NAMES, *HTTP_ACTION_NAMES, PAGE))
"""Every ``action:`` a runbook step may name."""

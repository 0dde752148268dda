"""Incident lifecycle: the states and which action may move an incident between them.

::

    declared ──ack──▶ acknowledged ──mitigate──▶ mitigated ──resolve──▶ resolved ──close──▶ closed
        │                  │                                   ▲            │
        │                  └──────────────resolve──────────────┤            │ reopen
        ├──mitigate──▶ (mitigated; counts as the first acknowledgement)    ▼
        └──────────────────────────resolve─────────────────────┘      acknowledged

``closed`` is final: the workflow completes and no action reaches it. A resolved incident
closes by itself when its reopen window passes. Notes, roles and severity may change in
every state but ``closed``.
"""

from __future__ import annotations

from enum import StrEnum

from workflows.contracts import IncidentStatus

S = IncidentStatus


class Action(StrEnum):
    """Actions that change an incident's status."""

    ACKNOWLEDGE = "acknowledge"
    MITIGATE = "mitigate"
    RESOLVE = "resolve"
    REOPEN = "reopen"
    CLOSE = "close"


TRANSITIONS: dict[Action, dict[IncidentStatus, IncidentStatus]] = {
    Action.ACKNOWLEDGE: {S.DECLARED: S.ACKNOWLEDGED},
    Action.MITIGATE: {S.DECLARED: S.MITIGATED, S.ACKNOWLEDGED: S.MITIGATED},
    Action.RESOLVE: {S.DECLARED: S.RESOLVED, S.ACKNOWLEDGED: S.RESOLVED, S.MITIGATED: S.RESOLVED},
    Action.REOPEN: {S.RESOLVED: S.ACKNOWLEDGED},
    Action.CLOSE: {S.RESOLVED: S.CLOSED},
}

# Why an action is refused in a state, in words an on-call engineer can act on.
_REFUSALS: dict[tuple[Action, IncidentStatus], str] = {
    (Action.ACKNOWLEDGE, S.ACKNOWLEDGED): "is already acknowledged",
    (Action.ACKNOWLEDGE, S.MITIGATED): "is already mitigated (and so acknowledged)",
    (Action.MITIGATE, S.MITIGATED): "is already mitigated",
    (Action.REOPEN, S.DECLARED): "is not resolved, so there is nothing to reopen",
    (Action.REOPEN, S.ACKNOWLEDGED): "is not resolved, so there is nothing to reopen",
    (Action.REOPEN, S.MITIGATED): "is not resolved, so there is nothing to reopen",
    (Action.CLOSE, S.DECLARED): "must be resolved before it can be closed",
    (Action.CLOSE, S.ACKNOWLEDGED): "must be resolved before it can be closed",
    (Action.CLOSE, S.MITIGATED): "must be resolved before it can be closed",
}


class TransitionRefused(ValueError):
    """An action is not allowed in the incident's current status."""


def next_status(current: IncidentStatus, action: Action, incident_id: str) -> IncidentStatus:
    """Return the status ``action`` leads to, or raise ``TransitionRefused`` saying why not."""
    target = TRANSITIONS[action].get(current)
    if target is not None:
        return target
    if current in (S.RESOLVED, S.CLOSED):
        reason = f"is {current.value}"
        if current is S.RESOLVED and action in (Action.ACKNOWLEDGE, Action.MITIGATE):
            reason += "; reopen it first if the problem is back"
    else:
        reason = _REFUSALS.get((action, current), f"cannot {action.value} from {current.value}")
    raise TransitionRefused(f"{incident_id} {reason}")


def is_open(status: IncidentStatus) -> bool:
    """An open incident still needs people: not yet resolved."""
    return status in (S.DECLARED, S.ACKNOWLEDGED, S.MITIGATED)

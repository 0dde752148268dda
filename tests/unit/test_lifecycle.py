"""The lifecycle table: every (state, action) pair either moves or says why not."""

from __future__ import annotations

import pytest

from workflows.contracts import IncidentStatus as S
from workflows.lifecycle import Action, TransitionRefused, is_open, next_status

ALLOWED = {
    (S.DECLARED, Action.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.DECLARED, Action.MITIGATE): S.MITIGATED,
    (S.DECLARED, Action.RESOLVE): S.RESOLVED,
    (S.ACKNOWLEDGED, Action.MITIGATE): S.MITIGATED,
    (S.ACKNOWLEDGED, Action.RESOLVE): S.RESOLVED,
    (S.MITIGATED, Action.RESOLVE): S.RESOLVED,
    (S.RESOLVED, Action.REOPEN): S.ACKNOWLEDGED,
    (S.RESOLVED, Action.CLOSE): S.CLOSED,
}

REFUSED = {
    (S.ACKNOWLEDGED, Action.ACKNOWLEDGE): "INC-7 is already acknowledged",
    (S.MITIGATED, Action.ACKNOWLEDGE): "INC-7 is already mitigated (and so acknowledged)",
    (S.MITIGATED, Action.MITIGATE): "INC-7 is already mitigated",
    (S.RESOLVED, Action.ACKNOWLEDGE): "INC-7 is resolved; reopen it first if the problem is back",
    (S.RESOLVED, Action.MITIGATE): "INC-7 is resolved; reopen it first if the problem is back",
    (S.RESOLVED, Action.RESOLVE): "INC-7 is resolved",
    (S.DECLARED, Action.REOPEN): "INC-7 is not resolved, so there is nothing to reopen",
    (S.ACKNOWLEDGED, Action.REOPEN): "INC-7 is not resolved, so there is nothing to reopen",
    (S.MITIGATED, Action.REOPEN): "INC-7 is not resolved, so there is nothing to reopen",
    (S.DECLARED, Action.CLOSE): "INC-7 must be resolved before it can be closed",
    (S.ACKNOWLEDGED, Action.CLOSE): "INC-7 must be resolved before it can be closed",
    (S.MITIGATED, Action.CLOSE): "INC-7 must be resolved before it can be closed",
    **{(S.CLOSED, action): "INC-7 is closed" for action in Action},
}


def test_the_tables_cover_every_pair() -> None:
    assert set(ALLOWED) | set(REFUSED) == {(s, a) for s in S for a in Action}
    assert not set(ALLOWED) & set(REFUSED)


@pytest.mark.parametrize(("pair", "target"), ALLOWED.items())
def test_allowed_transitions(pair: tuple[S, Action], target: S) -> None:
    assert next_status(pair[0], pair[1], "INC-7") is target


@pytest.mark.parametrize(("pair", "reason"), REFUSED.items())
def test_refused_transitions_say_why(pair: tuple[S, Action], reason: str) -> None:
    with pytest.raises(TransitionRefused) as caught:
        next_status(pair[0], pair[1], "INC-7")
    assert str(caught.value) == reason


def test_open_states() -> None:
    assert [s for s in S if is_open(s)] == [S.DECLARED, S.ACKNOWLEDGED, S.MITIGATED]

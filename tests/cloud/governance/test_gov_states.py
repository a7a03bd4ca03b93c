"""The incident state machine, every (state, action) pair."""

from __future__ import annotations

import pytest

from cloud.governance.states import (
    TRANSITIONS,
    Action,
    IllegalTransition,
    State,
    allowed_actions,
    next_state,
)

S = State
# The whole table written out by hand: (state, action) → next state; absent = illegal.
EXPECTED: dict[tuple[State, Action], State] = {}
for s in (S.OPEN, S.REPORTED, S.DISPATCHED, S.IN_PROGRESS):
    EXPECTED |= {(s, Action.DISPATCH): S.DISPATCHED, (s, Action.RESOLVE): S.RESOLVED,
                 (s, Action.CANCEL): S.CANCELLED, (s, Action.WHISTLE): s}  # fmt: skip
for s in State:
    EXPECTED[(s, Action.COMMENT)] = s
    if s not in (S.CLOSED, S.CANCELLED):
        EXPECTED[(s, Action.PHOTO)] = s
EXPECTED |= {
    (S.DISPATCHED, Action.ACCEPT): S.IN_PROGRESS,
    (S.IN_PROGRESS, Action.ARRIVE): S.IN_PROGRESS,
    (S.RESOLVED, Action.CONFIRM): S.RESOLVED,
    (S.RESOLVED, Action.REOPEN): S.IN_PROGRESS,
    (S.RESOLVED, Action.CLOSE): S.CLOSED,
}


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("action", list(Action))
def test_every_pair(state: State, action: Action) -> None:
    want = EXPECTED.get((state, action))
    if want is not None:
        assert next_state(7, state, action) is want
        assert action in allowed_actions(state)
        return
    with pytest.raises(IllegalTransition) as info:
        next_state(7, state, action)
    allowed = sorted(s.value for s in TRANSITIONS[action][0])
    assert info.value.allowed == allowed
    assert f"cannot {action.value} from {state.value}" in str(info.value)
    assert all(a in str(info.value) for a in allowed)
    assert action not in allowed_actions(state)


def test_terminal_states_only_take_comments() -> None:
    assert allowed_actions(S.CLOSED) == [Action.COMMENT]
    assert allowed_actions(S.CANCELLED) == [Action.COMMENT]
    assert all(not s.unresolved for s in (S.RESOLVED, S.CLOSED, S.CANCELLED))

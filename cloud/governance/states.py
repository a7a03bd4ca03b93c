"""The incident workflow as pure data: states, actions and the legal transitions.

    reported/open → dispatched → in_progress → resolved → closed      (and cancelled)

``open`` is where manual and alert incidents start, ``reported`` where residents' reports start;
they behave alike. ``arrive``, ``confirm``, ``comment``, ``photo`` and ``whistle`` keep the state.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    OPEN = "open"
    REPORTED = "reported"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"

    @property
    def unresolved(self) -> bool:
        return self in _UNRESOLVED

    @property
    def terminal(self) -> bool:
        return self in (State.CLOSED, State.CANCELLED)


class Action(StrEnum):
    DISPATCH = "dispatch"
    ACCEPT = "accept"
    ARRIVE = "arrive"
    RESOLVE = "resolve"
    CONFIRM = "confirm"
    REOPEN = "reopen"
    CLOSE = "close"
    CANCEL = "cancel"
    COMMENT = "comment"
    PHOTO = "photo"
    WHISTLE = "whistle"


_UNRESOLVED = frozenset({State.OPEN, State.REPORTED, State.DISPATCHED, State.IN_PROGRESS})
_LIVE = frozenset(s for s in State if s not in (State.CLOSED, State.CANCELLED))

# action → (states it is allowed from, state it leads to; None = unchanged)
TRANSITIONS: dict[Action, tuple[frozenset[State], State | None]] = {
    Action.DISPATCH: (_UNRESOLVED, State.DISPATCHED),
    Action.ACCEPT: (frozenset({State.DISPATCHED}), State.IN_PROGRESS),
    Action.ARRIVE: (frozenset({State.IN_PROGRESS}), None),
    Action.RESOLVE: (_UNRESOLVED, State.RESOLVED),
    Action.CONFIRM: (frozenset({State.RESOLVED}), None),
    Action.REOPEN: (frozenset({State.RESOLVED}), State.IN_PROGRESS),
    Action.CLOSE: (frozenset({State.RESOLVED}), State.CLOSED),
    Action.CANCEL: (_UNRESOLVED, State.CANCELLED),
    Action.COMMENT: (frozenset(State), None),
    Action.PHOTO: (_LIVE, None),
    Action.WHISTLE: (_UNRESOLVED, None),
}


class IllegalTransition(ValueError):
    """An action not allowed from the incident's state (the API answers 409)."""

    def __init__(self, incident_id: int, state: State, action: Action) -> None:
        self.incident_id = incident_id
        self.state = state
        self.action = action
        self.allowed = sorted(s.value for s in TRANSITIONS[action][0])
        super().__init__(
            f"incident {incident_id}: cannot {action.value} from {state.value} "
            f"(allowed from {', '.join(self.allowed)})"
        )


def next_state(incident_id: int, state: State, action: Action) -> State:
    """The state after ``action``, or :class:`IllegalTransition`."""
    allowed, to = TRANSITIONS[action]
    if state not in allowed:
        raise IllegalTransition(incident_id, state, action)
    return state if to is None else to


def allowed_actions(state: State) -> list[Action]:
    """What may be done to an incident in ``state`` (pages show these buttons)."""
    return [a for a, (frm, _) in TRANSITIONS.items() if state in frm]

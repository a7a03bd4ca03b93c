"""The alert workflow as pure data: severities, statuses and the legal transitions.

    OPEN → ACKNOWLEDGED → IN_PROGRESS (assignee) → RESOLVED → CLOSED

The condition's own ``cleared`` flag is separate: a cleared condition does not resolve an alert
(a person does), and a condition raised again on a RESOLVED alert reopens it.
"""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INFO = "info"

    @property
    def rank(self) -> int:
        """0 for critical … 4 for info: lower is more severe."""
        return list(Severity).index(self)

    def at_least(self, other: Severity) -> bool:
        return self.rank <= other.rank


class Status(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def active(self) -> bool:
        """Whether the alert still holds its (rule, subject) slot: anything not closed."""
        return self is not Status.CLOSED

    @property
    def unresolved(self) -> bool:
        return self in (Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS)


class Transition(StrEnum):
    """What a person does to an alert."""

    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    COMMENT = "comment"
    ESCALATE = "escalate"


_UNRESOLVED = frozenset({Status.OPEN, Status.ACKNOWLEDGED, Status.IN_PROGRESS})
_ACTIVE = frozenset(s for s in Status if s.active)

# transition → (statuses it is allowed from, status it leads to; None = unchanged)
TRANSITIONS: dict[Transition, tuple[frozenset[Status], Status | None]] = {
    Transition.ACKNOWLEDGE: (frozenset({Status.OPEN}), Status.ACKNOWLEDGED),
    Transition.ASSIGN: (_UNRESOLVED, None),
    Transition.START: (frozenset({Status.ACKNOWLEDGED}), Status.IN_PROGRESS),
    Transition.RESOLVE: (frozenset({Status.ACKNOWLEDGED, Status.IN_PROGRESS}), Status.RESOLVED),
    Transition.CLOSE: (frozenset({Status.RESOLVED}), Status.CLOSED),
    Transition.COMMENT: (frozenset(Status), None),
    Transition.ESCALATE: (_UNRESOLVED, None),
}


class IllegalTransition(ValueError):
    """A transition not allowed from the alert's current status (the API answers 409)."""

    def __init__(self, alert_id: int, status: Status, transition: Transition) -> None:
        self.alert_id = alert_id
        self.status = status
        self.transition = transition
        allowed = sorted(s.value for s in TRANSITIONS[transition][0])
        super().__init__(
            f"alert {alert_id}: cannot {transition.value} from {status.value} "
            f"(allowed from {', '.join(allowed)})"
        )


def next_status(alert_id: int, status: Status, transition: Transition) -> Status:
    """The status after ``transition``, or :class:`IllegalTransition`."""
    allowed, to = TRANSITIONS[transition]
    if status not in allowed:
        raise IllegalTransition(alert_id, status, transition)
    return status if to is None else to

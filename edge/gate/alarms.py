"""Door alarms from the door-contact input: forced open, held open, tailgating.

A pure state machine: feed it grants, contact changes, people passing and clock ticks (each
with its time); it returns the alarms to raise. No I/O, no clock of its own.

- **forced open**: the contact opens with no unused grant younger than ``grant_window_s``.
- **held open**: the door stays open longer than ``held_open_s`` (raised once per opening).
- **tailgating**: more people pass during one opening than grants were used for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum


class Alarm(StrEnum):
    FORCED_OPEN = "forced_open"
    HELD_OPEN = "held_open"
    TAILGATING = "tailgating"


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    alarm: Alarm
    door: str
    at: datetime
    detail: dict[str, float | str] = field(default_factory=dict)


@dataclass(slots=True)
class DoorAlarms:
    door: str
    held_open_s: float = 30.0
    grant_window_s: float = 8.0
    is_open: bool = False
    opened_at: datetime | None = None
    pending_grants: list[datetime] = field(default_factory=list)
    grants_this_opening: int = 0
    passed_this_opening: int = 0
    held_raised: bool = False
    tailgating_raised: bool = False

    def _fresh_grants(self, at: datetime) -> list[datetime]:
        window = timedelta(seconds=self.grant_window_s)
        return [g for g in self.pending_grants if at - window <= g <= at]

    def grant(self, at: datetime) -> list[AlarmEvent]:
        """The policy granted passage: the next opening (within the window) is legitimate."""
        if self.is_open:
            self.grants_this_opening += 1  # a second person badged while the door was open
        else:
            self.pending_grants = [*self._fresh_grants(at), at]
        return []

    def contact(self, is_open: bool, at: datetime) -> list[AlarmEvent]:
        """The door contact changed (or repeated its state: repeats are ignored)."""
        if is_open == self.is_open:
            return self.tick(at)
        alarms: list[AlarmEvent] = []
        if is_open:
            grants = self._fresh_grants(at)
            self.is_open, self.opened_at = True, at
            self.held_raised = self.tailgating_raised = False
            self.passed_this_opening = 0
            if grants:
                self.pending_grants = []
                self.grants_this_opening = len(grants)
            else:
                self.grants_this_opening = 0
                alarms.append(AlarmEvent(Alarm.FORCED_OPEN, self.door, at))
        else:
            alarms += self.tick(at)
            self.is_open, self.opened_at = False, None
        return alarms

    def passed(self, people: int, at: datetime) -> list[AlarmEvent]:
        """``people`` people were seen going through (camera count or a beam sensor)."""
        alarms = self.tick(at)
        if not self.is_open:
            return alarms
        self.passed_this_opening += people
        if self.passed_this_opening > self.grants_this_opening and not self.tailgating_raised:
            self.tailgating_raised = True
            detail: dict[str, float | str] = {
                "people": float(self.passed_this_opening),
                "grants": float(self.grants_this_opening),
            }
            alarms.append(AlarmEvent(Alarm.TAILGATING, self.door, at, detail))
        return alarms

    def tick(self, at: datetime) -> list[AlarmEvent]:
        if not self.is_open or self.opened_at is None or self.held_raised:
            return []
        open_for = (at - self.opened_at).total_seconds()
        if open_for > self.held_open_s:
            self.held_raised = True
            return [AlarmEvent(Alarm.HELD_OPEN, self.door, at, {"open_s": open_for})]
        return []

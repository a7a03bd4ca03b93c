"""Door-contact alarms: forced open, held open, tailgating (pure state machine)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from edge.gate.alarms import Alarm, DoorAlarms

T = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def kinds(events: list) -> list[Alarm]:  # type: ignore[type-arg]
    return [e.alarm for e in events]


def test_granted_opening_raises_nothing() -> None:
    door = DoorAlarms("main", held_open_s=10)
    assert door.grant(s(0)) == []
    assert door.contact(True, s(1)) == []
    assert door.passed(1, s(2)) == []
    assert door.contact(False, s(4)) == []


def test_forced_open_without_a_grant() -> None:
    door = DoorAlarms("main")
    events = door.contact(True, s(0))
    assert kinds(events) == [Alarm.FORCED_OPEN] and events[0].door == "main"


def test_grant_expires_after_its_window() -> None:
    door = DoorAlarms("main", grant_window_s=8)
    door.grant(s(0))
    assert kinds(door.contact(True, s(20))) == [Alarm.FORCED_OPEN]


def test_a_grant_is_used_once() -> None:
    door = DoorAlarms("main")
    door.grant(s(0))
    assert door.contact(True, s(1)) == []
    door.contact(False, s(3))
    assert kinds(door.contact(True, s(4))) == [Alarm.FORCED_OPEN]


def test_held_open_raised_once_past_the_limit() -> None:
    door = DoorAlarms("main", held_open_s=30)
    door.grant(s(0))
    door.contact(True, s(1))
    assert door.tick(s(30)) == []
    held = door.tick(s(32))
    assert kinds(held) == [Alarm.HELD_OPEN] and held[0].detail["open_s"] == 31.0
    assert door.tick(s(60)) == []  # once per opening
    door.contact(False, s(61))
    door.grant(s(70))
    door.contact(True, s(71))
    assert kinds(door.tick(s(102))) == [Alarm.HELD_OPEN]


def test_held_open_detected_on_close_too() -> None:
    door = DoorAlarms("main", held_open_s=5)
    door.grant(s(0))
    door.contact(True, s(0))
    assert kinds(door.contact(False, s(9))) == [Alarm.HELD_OPEN]


def test_tailgating_more_people_than_grants() -> None:
    door = DoorAlarms("main")
    door.grant(s(0))
    door.contact(True, s(1))
    assert door.passed(1, s(2)) == []
    events = door.passed(1, s(3))
    assert kinds(events) == [Alarm.TAILGATING]
    assert events[0].detail == {"people": 2.0, "grants": 1.0}
    assert door.passed(1, s(3.5)) == []  # once per opening


def test_two_grants_let_two_people_through() -> None:
    door = DoorAlarms("main")
    door.grant(s(0))
    door.grant(s(1))
    door.contact(True, s(2))
    assert door.passed(2, s(3)) == []
    assert kinds(door.passed(1, s(4))) == [Alarm.TAILGATING]


def test_grant_while_open_counts_for_this_opening() -> None:
    door = DoorAlarms("main")
    door.grant(s(0))
    door.contact(True, s(1))
    door.grant(s(2))
    assert door.passed(2, s(3)) == []


def test_people_counted_while_closed_are_ignored() -> None:
    door = DoorAlarms("main")
    assert door.passed(3, s(0)) == []

"""Report strategies and safety transitions: pure functions, no broker."""

from __future__ import annotations

from edge.reporting import (
    Reporter,
    ReportMode,
    ReportPolicy,
    SafetyWatch,
    Transition,
    changed,
    should_report,
)
from protocols.kinds import DeviceKind


def test_first_sample_is_always_reported() -> None:
    for mode in ReportMode:
        assert should_report(ReportPolicy(mode, 1.0, 60), None, 20.0, 0.0)


def test_change_mode_uses_the_deadband() -> None:
    p = ReportPolicy(ReportMode.CHANGE, deadband=0.5, period=60)
    assert not should_report(p, (20.0, 0.0), 20.4, 1.0)
    assert not should_report(p, (20.0, 0.0), 20.5, 1.0)  # not *more* than the deadband
    assert should_report(p, (20.0, 0.0), 20.6, 1.0)
    assert should_report(p, (20.0, 0.0), 19.4, 1.0)
    assert not should_report(p, (20.0, 0.0), 20.0, 10_000.0), "change mode never reports on time"


def test_period_mode_ignores_changes() -> None:
    p = ReportPolicy(ReportMode.PERIOD, deadband=0.0, period=60)
    assert not should_report(p, (20.0, 0.0), 99.0, 59.9)
    assert should_report(p, (20.0, 0.0), 20.0, 60.0)


def test_change_or_period() -> None:
    p = ReportPolicy(ReportMode.CHANGE_OR_PERIOD, deadband=1.0, period=60)
    assert not should_report(p, (20.0, 0.0), 20.5, 30.0)
    assert should_report(p, (20.0, 0.0), 21.5, 30.0)
    assert should_report(p, (20.0, 0.0), 20.0, 60.0)


def test_binary_values_change_on_any_flip() -> None:
    assert changed(False, True, 100.0)
    assert not changed(True, True, 0.0)


def test_reporter_remembers_the_last_report_not_the_last_sample() -> None:
    r = Reporter(ReportPolicy(ReportMode.CHANGE, deadband=1.0))
    assert r.offer("t", "temperature", 20.0, 0)
    assert not r.offer("t", "temperature", 20.6, 1)
    assert r.offer("t", "temperature", 21.2, 2), "creeping drift adds up against the last report"
    r.policies["u"] = ReportPolicy(ReportMode.PERIOD, period=10)
    assert r.offer("u", "humidity", 50.0, 0)
    assert not r.offer("u", "humidity", 90.0, 5)
    assert r.offer("u", "humidity", 90.0, 10)


def test_safety_watch_alarm_and_clear() -> None:
    w = SafetyWatch()
    assert w.offer("s", DeviceKind.SMOKE, "smoke", False) is None
    change = w.offer("s", DeviceKind.SMOKE, "smoke", True)
    assert change is not None and change.transition is Transition.ALARM
    assert change.event == "smoke.alarm"
    assert w.offer("s", DeviceKind.SMOKE, "smoke", True) is None
    clear = w.offer("s", DeviceKind.SMOKE, "smoke", False)
    assert clear is not None and clear.event == "smoke.clear"
    assert w.offer("s", DeviceKind.SMOKE, "battery", 5.0) is None, "battery is not a safety metric"
    assert w.offer("d", DeviceKind.DOOR_CONTACT, "open", True) is None
    first = w.offer("l", DeviceKind.WATER_LEAK, "leak", True)
    assert first is not None and first.event == "water_leak.alarm", "already on at start alarms"

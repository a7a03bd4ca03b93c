"""Which samples become readings and which become safety events. Pure: no I/O, no clock.

A driver produces a :class:`~edge.drivers.base.Sample` per metric per read. The
:class:`Reporter` keeps the last *reported* value of each (device, metric) and lets a sample
through by the device's :class:`ReportPolicy`:

``change``            when the value moved by more than the deadband (binary: any flip)
``period``            when ``period`` seconds passed since the last report
``change_or_period``  either (the usual choice: quiet sensors still prove they are alive)

The first sample of a metric is always reported. Safety metrics (``kinds.METRICS`` with
``safety=True``) are in addition watched by :class:`SafetyWatch`, which turns a flip to True
into an ``<kind>.alarm`` event and back to False into ``<kind>.clear``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.kinds import DeviceKind, metric


class ReportMode(StrEnum):
    CHANGE = "change"
    PERIOD = "period"
    CHANGE_OR_PERIOD = "change_or_period"


@dataclass(frozen=True, slots=True)
class ReportPolicy:
    mode: ReportMode = ReportMode.CHANGE_OR_PERIOD
    deadband: float = 0.0
    period: float = 300.0


Value = float | bool


def changed(last: Value, value: Value, deadband: float) -> bool:
    """True if ``value`` differs from ``last`` by more than ``deadband`` (binary: any flip)."""
    if isinstance(last, bool) or isinstance(value, bool):
        return bool(last) != bool(value) or type(last) is not type(value)
    return abs(value - last) > deadband


def should_report(
    policy: ReportPolicy, last: tuple[Value, float] | None, value: Value, now: float
) -> bool:
    """Decide one sample. ``last`` is the last reported (value, time), None if never."""
    if last is None:
        return True
    last_value, last_ts = last
    due = now - last_ts >= policy.period
    if policy.mode is ReportMode.PERIOD:
        return due
    moved = changed(last_value, value, policy.deadband)
    if policy.mode is ReportMode.CHANGE:
        return moved
    return moved or due


class Reporter:
    """Stateful filter over :func:`should_report`, one entry per (device, metric)."""

    __slots__ = ("_last", "default", "policies")

    def __init__(
        self, default: ReportPolicy, policies: dict[str, ReportPolicy] | None = None
    ) -> None:
        self.default = default
        self.policies = policies or {}
        self._last: dict[tuple[str, str], tuple[Value, float]] = {}

    def offer(self, device: str, name: str, value: Value, now: float) -> bool:
        """True if this sample is to be reported (and remember it as the last report)."""
        key = (device, name)
        policy = self.policies.get(device, self.default)
        if should_report(policy, self._last.get(key), value, now):
            self._last[key] = (value, now)
            return True
        return False

    def note(self, device: str, name: str, value: Value, now: float) -> None:
        """Record a report made regardless of the policy (a safety flip is always reported)."""
        self._last[(device, name)] = (value, now)

    def forget(self, device: str) -> None:
        for key in [k for k in self._last if k[0] == device]:
            del self._last[key]


class Transition(StrEnum):
    ALARM = "alarm"
    CLEAR = "clear"


@dataclass(frozen=True, slots=True)
class SafetyChange:
    device: str
    kind: DeviceKind
    metric: str
    transition: Transition

    @property
    def event(self) -> str:
        """The DeviceEvent name, e.g. ``smoke.alarm``, ``water_leak.clear``, ``sos.alarm``."""
        return f"{self.kind.value}.{self.transition.value}"


class SafetyWatch:
    """Detects flips of binary safety metrics. A first sample that is already True alarms."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state: dict[tuple[str, str], bool] = {}

    def offer(self, device: str, kind: DeviceKind, name: str, value: Value) -> SafetyChange | None:
        info = metric(kind, name)
        if info is None or not info.safety:
            return None
        key = (device, name)
        now_on = bool(value)
        before = self._state.get(key)
        self._state[key] = now_on
        if now_on and not before:
            return SafetyChange(device, kind, name, Transition.ALARM)
        if before and not now_on:
            return SafetyChange(device, kind, name, Transition.CLEAR)
        return None

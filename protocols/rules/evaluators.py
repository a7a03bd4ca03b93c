"""Condition state machines, one class per condition type. Pure: time comes from the caller.

An evaluator turns observations (and timer firings) into :class:`Hit` s: "condition holds /
no longer holds for this source". The engine's alert layer turns hits into actions, applying
subjects, schedules, flap safety and the historical rule. State is kept per *source*: the
device for thresholds, rates and silence; the subject for counts; the zone for correlations.
Timers are armed lazily (at most one pending entry per source): when one fires, the evaluator
recomputes and re-arms if the deadline moved.
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from protocols.rules.language import (
    Count,
    Event,
    NoData,
    Op,
    Rate,
    Rule,
    SubjectType,
    Threshold,
)
from protocols.rules.observations import Observation

OPS: dict[Op, Callable[[Any, Any], bool]] = {
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}
ArmTimer = Callable[[float, int, str], None]
"""``arm(due, evaluator_index, key)``: ask the engine to call ``on_timer(key, due)`` at ``due``."""


@dataclass(slots=True)
class Hit:
    source: str
    site: str
    subject: str
    active: bool
    t: float
    live: bool
    evidence: tuple[Observation, ...]
    ctx: Observation | None
    reason: str = "cleared"


def opt_float(value: Any) -> float | None:
    """A number from a snapshot, or None; anything else is a TypeError/ValueError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def dump_obs(obs: Observation | None) -> dict[str, Any] | None:
    return None if obs is None else obs.model_dump(mode="json", exclude_none=True)


def load_obs(data: Any) -> Observation | None:
    return None if data is None else Observation.model_validate(data)


def subject_of(rule: Rule, obs: Observation) -> str:
    if rule.subject is SubjectType.ZONE:
        return obs.zone or obs.device
    return obs.device


class Evaluator:
    """Base: state per key, one armed timer per key."""

    def __init__(self, rule: Rule, index: int, arm: ArmTimer) -> None:
        self.rule = rule
        self.index = index
        self._arm_cb = arm

    def _arm(self, st: Any, key: str, due: float) -> None:
        if st.timer is None or due < st.timer:
            st.timer = due
            self._arm_cb(due, self.index, key)

    def observe(self, obs: Observation, t: float, member: int) -> list[Hit]:
        raise NotImplementedError

    def on_timer(self, key: str, due: float, now: float) -> list[Hit]:
        raise NotImplementedError

    def export(self) -> dict[str, Any]:
        raise NotImplementedError

    def load(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    def rearm_all(self) -> None:
        for key, st in self.states().items():
            if st.timer is not None:
                self._arm_cb(st.timer, self.index, key)

    def states(self) -> dict[str, Any]:
        raise NotImplementedError


# --- threshold and rate: a latch with hysteresis and an optional "for" -----------------------


@dataclass(slots=True)
class LatchState:
    site: str
    subject: str
    active: bool = False
    since: float | None = None
    timer: float | None = None
    live: bool = True
    first: Observation | None = None
    last: Observation | None = None
    samples: deque[tuple[float, float]] = field(default_factory=deque)

    def export(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "subject": self.subject,
            "active": self.active,
            "since": self.since,
            "timer": self.timer,
            "live": self.live,
            "first": dump_obs(self.first),
            "last": dump_obs(self.last),
            "samples": [list(s) for s in self.samples],
        }

    @classmethod
    def load(cls, d: dict[str, Any]) -> LatchState:
        return cls(
            site=str(d["site"]),
            subject=str(d["subject"]),
            active=bool(d["active"]),
            since=opt_float(d.get("since")),
            timer=opt_float(d.get("timer")),
            live=bool(d.get("live", True)),
            first=load_obs(d.get("first")),
            last=load_obs(d.get("last")),
            samples=deque((float(a), float(b)) for a, b in d.get("samples", ())),
        )


class LatchEvaluator(Evaluator):
    """Shared by threshold and rate: raise when ``raw`` holds (for ``for``), clear on ``clear``."""

    hold_for: float | None
    keep_state: bool = False

    def __init__(self, rule: Rule, index: int, arm: ArmTimer) -> None:
        super().__init__(rule, index, arm)
        self._states: dict[str, LatchState] = {}

    def states(self) -> dict[str, Any]:
        return self._states

    def measure(self, st: LatchState, obs: Observation, t: float) -> float | bool | None:
        raise NotImplementedError

    def raw(self, x: float | bool) -> bool:
        raise NotImplementedError

    def cleared(self, x: float | bool) -> bool:
        raise NotImplementedError

    def _hit(self, key: str, st: LatchState, active: bool, t: float) -> Hit:
        evidence = tuple(o for o in (st.first, st.last) if o is not None)
        if len(evidence) == 2 and evidence[0] is evidence[1]:
            evidence = evidence[:1]
        return Hit(key, st.site, st.subject, active, t, st.live, evidence, st.last)

    def observe(self, obs: Observation, t: float, member: int) -> list[Hit]:
        key = f"{obs.site}/{obs.device}"
        st = self._states.get(key)
        if st is None:
            if not self.keep_state:
                # Hot path: most readings are normal; keep no state for them at all.
                value = obs.value
                if value is None or not self.raw(value):
                    return []
            st = LatchState(obs.site, subject_of(self.rule, obs))
        x = self.measure(st, obs, t)
        if x is None:
            if self.keep_state:
                self._states[key] = st
            return []
        st.last = obs
        st.live = not obs.historical
        if st.active:
            if self.cleared(x):
                st.active = False
                st.since = None
                st.first = None
                hit = self._hit(key, st, False, t)
                self._forget(key, st)
                return [hit]
            return [self._hit(key, st, True, t)]
        if not self.raw(x):
            st.since = None
            st.first = None
            self._forget(key, st)
            return []
        self._states[key] = st
        if st.since is None:
            st.since = t
            st.first = obs
        if self.hold_for is None or t - st.since >= self.hold_for:
            st.active = True
            return [self._hit(key, st, True, t)]
        self._arm(st, key, st.since + self.hold_for)
        return []

    def _forget(self, key: str, st: LatchState) -> None:
        # Keep the state while its timer is pending: a new streak then reuses that one heap
        # entry instead of adding one per streak (a flapping sensor would grow the heap).
        if self.keep_state or st.timer is not None:
            self._states[key] = st
        else:
            self._states.pop(key, None)

    def on_timer(self, key: str, due: float, now: float) -> list[Hit]:
        st = self._states.get(key)
        if st is None or st.timer != due:
            return []
        st.timer = None
        if st.active or st.since is None or self.hold_for is None:
            if not st.active and st.since is None:
                self._forget(key, st)
            return []
        fire_at = st.since + self.hold_for
        if now < fire_at:
            self._arm(st, key, fire_at)
            return []
        st.active = True
        return [self._hit(key, st, True, fire_at)]

    def export(self) -> dict[str, Any]:
        return {k: st.export() for k, st in self._states.items()}

    def load(self, data: dict[str, Any]) -> None:
        self._states = {k: LatchState.load(v) for k, v in data.items()}


class ThresholdEvaluator(LatchEvaluator):
    def __init__(self, rule: Rule, index: int, arm: ArmTimer) -> None:
        super().__init__(rule, index, arm)
        cond = rule.when
        assert isinstance(cond, Threshold)
        self.cmp = OPS[cond.op]
        self.value = cond.value
        self.hold_for = cond.for_
        self.clear = cond.clear
        self.up = cond.op in (Op.GT, Op.GE)

    def measure(self, st: LatchState, obs: Observation, t: float) -> float | bool | None:
        return obs.value

    def raw(self, x: float | bool) -> bool:
        return self.cmp(x, self.value)

    def cleared(self, x: float | bool) -> bool:
        if self.clear is None:
            return not self.cmp(x, self.value)
        return x < self.clear if self.up else x > self.clear


def rate_of(samples: deque[tuple[float, float]], t: float, x: float, over: float) -> float | None:
    """Append ``(t, x)``, drop samples older than ``over`` and return the change per minute."""
    if samples and t < samples[-1][0]:
        return None  # out of order: callers keep per-device order; ignore rather than guess
    samples.append((t, x))
    while samples and samples[0][0] < t - over:
        samples.popleft()
    span = t - samples[0][0]
    if len(samples) < 2 or span < over / 2:
        return None
    return (x - samples[0][1]) / span * 60.0


class RateEvaluator(LatchEvaluator):
    keep_state = True  # the samples are the state

    def __init__(self, rule: Rule, index: int, arm: ArmTimer) -> None:
        super().__init__(rule, index, arm)
        cond = rule.when
        assert isinstance(cond, Rate)
        self.cmp = OPS[cond.op]
        self.per_minute = cond.per_minute
        self.over = cond.over
        self.hold_for = cond.for_
        self.clear = cond.clear
        self.up = cond.op in (Op.GT, Op.GE)

    def measure(self, st: LatchState, obs: Observation, t: float) -> float | bool | None:
        if obs.value is None:
            return None
        return rate_of(st.samples, t, float(obs.value), self.over)

    def raw(self, x: float | bool) -> bool:
        return self.cmp(x, self.per_minute)

    def cleared(self, x: float | bool) -> bool:
        if self.clear is None:
            return not self.cmp(x, self.per_minute)
        return x < self.clear if self.up else x > self.clear


# --- count in window and single events --------------------------------------------------------


@dataclass(slots=True)
class CountState:
    site: str
    subject: str
    events: deque[tuple[float, Observation]]
    active: bool = False
    timer: float | None = None
    live: bool = True

    def export(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "subject": self.subject,
            "events": [[t, dump_obs(o)] for t, o in self.events],
            "active": self.active,
            "timer": self.timer,
            "live": self.live,
        }


class CountEvaluator(Evaluator):
    """At least N matching observations per subject in the sliding window ``(now − W, now]``.

    Member 0 is the rule's selector; member 1 is ``clear_on``.
    """

    def __init__(self, rule: Rule, index: int, arm: ArmTimer) -> None:
        super().__init__(rule, index, arm)
        cond = rule.when
        if isinstance(cond, Count):
            self.n, self.within = cond.at_least, cond.within
        else:
            assert isinstance(cond, Event)
            self.n, self.within = 1, cond.hold
        self._states: dict[str, CountState] = {}

    def states(self) -> dict[str, Any]:
        return self._states

    def _holds(self, st: CountState, now: float) -> bool:
        ev = st.events
        return len(ev) >= self.n and ev[-self.n][0] > now - self.within

    def observe(self, obs: Observation, t: float, member: int) -> list[Hit]:
        subject = subject_of(self.rule, obs)
        key = f"{obs.site}/{subject}"
        st = self._states.get(key)
        if member == 1:
            if st is None:
                return []
            st.events.clear()
            if st.active:
                st.active = False
                return [
                    Hit(
                        key, st.site, subject, False, t, not obs.historical, (obs,), obs, "clear_on"
                    )
                ]
            return []
        if st is None:
            st = self._states[key] = CountState(obs.site, subject, deque(maxlen=self.n))
        if st.events and t < st.events[-1][0]:
            st.events.append((t, obs))
            st.events = deque(sorted(st.events, key=lambda e: e[0]), maxlen=self.n)
        else:
            st.events.append((t, obs))
        st.live = not obs.historical
        latest = st.events[-1][0]
        holds = self._holds(st, latest)
        evidence = tuple(o for _, o in st.events)
        if holds:
            st.active = True
            self._arm(st, key, st.events[-self.n][0] + self.within)
            return [Hit(key, st.site, subject, True, t, st.live, evidence, obs)]
        self._arm(st, key, latest + self.within)
        if st.active:
            st.active = False
            return [Hit(key, st.site, subject, False, t, st.live, evidence, obs, "window_expired")]
        return []

    def on_timer(self, key: str, due: float, now: float) -> list[Hit]:
        st = self._states.get(key)
        if st is None or st.timer != due:
            return []
        st.timer = None
        out = []
        if st.active and not self._holds(st, now):
            st.active = False
            last = st.events[-1][1] if st.events else None
            out.append(Hit(key, st.site, st.subject, False, due, True, (), last, "window_expired"))
        while st.events and st.events[0][0] <= now - self.within:
            st.events.popleft()
        if not st.events and not st.active:
            del self._states[key]
        elif st.active:
            self._arm(st, key, st.events[-self.n][0] + self.within)
        else:
            self._arm(st, key, st.events[-1][0] + self.within)
        return out

    def export(self) -> dict[str, Any]:
        return {k: st.export() for k, st in self._states.items()}

    def load(self, data: dict[str, Any]) -> None:
        self._states = {}
        for k, d in data.items():
            events: deque[tuple[float, Observation]] = deque(maxlen=self.n)
            for t, o in d["events"]:
                obs = load_obs(o)
                if obs is not None:
                    events.append((float(t), obs))
            self._states[k] = CountState(
                str(d["site"]),
                str(d["subject"]),
                events,
                bool(d["active"]),
                opt_float(d.get("timer")),
                bool(d.get("live", True)),
            )


# --- no data ----------------------------------------------------------------------------------


@dataclass(slots=True)
class SilenceState:
    site: str
    subject: str
    last_seen: float
    last: Observation
    active: bool = False
    timer: float | None = None


class NoDataEvaluator(Evaluator):
    def __init__(self, rule: Rule, index: int, arm: ArmTimer) -> None:
        super().__init__(rule, index, arm)
        cond = rule.when
        assert isinstance(cond, NoData)
        self.silence = cond.for_
        self.cmp = OPS[cond.op] if cond.op is not None else None
        self.value = cond.value
        self._states: dict[str, SilenceState] = {}
        self.listening_since = float("-inf")
        """Silence before this time is not judged (set when an engine resumes a snapshot)."""

    def states(self) -> dict[str, Any]:
        return self._states

    def observe(self, obs: Observation, t: float, member: int) -> list[Hit]:
        if self.cmp is not None and (obs.value is None or not self.cmp(obs.value, self.value)):
            return []
        key = f"{obs.site}/{obs.device}"
        st = self._states.get(key)
        if st is None:
            st = self._states[key] = SilenceState(obs.site, subject_of(self.rule, obs), t, obs)
        elif t > st.last_seen:
            st.last_seen, st.last = t, obs
        else:
            return []  # not newer than what was seen: says nothing about the silence since
        self._arm(st, key, st.last_seen + self.silence)
        if st.active:
            st.active = False
            live = not obs.historical
            return [Hit(key, st.site, st.subject, False, t, live, (obs,), obs, "no_data_resumed")]
        return []

    def on_timer(self, key: str, due: float, now: float) -> list[Hit]:
        st = self._states.get(key)
        if st is None or st.timer != due:
            return []
        st.timer = None
        if st.active:
            return []
        fire_at = max(st.last_seen, self.listening_since) + self.silence
        if now < fire_at:
            self._arm(st, key, fire_at)
            return []
        st.active = True
        # Silence has no observation as its cause: no evidence; ctx names the device.
        return [Hit(key, st.site, st.subject, True, fire_at, True, (), st.last)]

    def export(self) -> dict[str, Any]:
        return {
            k: {
                "site": s.site,
                "subject": s.subject,
                "last_seen": s.last_seen,
                "last": dump_obs(s.last),
                "active": s.active,
                "timer": s.timer,
            }
            for k, s in self._states.items()
        }

    def load(self, data: dict[str, Any]) -> None:
        self._states = {}
        for k, d in data.items():
            last = load_obs(d["last"])
            if last is None:
                continue
            self._states[k] = SilenceState(
                str(d["site"]),
                str(d["subject"]),
                float(d["last_seen"]),
                last,
                bool(d["active"]),
                opt_float(d.get("timer")),
            )

"""Correlation: several devices of one zone agree within a window (smoke AND heat ⇒ fire)."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from protocols.rules.evaluators import (
    OPS,
    ArmTimer,
    Evaluator,
    Hit,
    dump_obs,
    load_obs,
    opt_float,
    rate_of,
)
from protocols.rules.language import Correlation, Member, Rule
from protocols.rules.observations import Observation


@dataclass(slots=True)
class ZoneState:
    site: str
    zone: str
    hits: list[dict[str, tuple[float, Observation]]]
    active: bool = False
    timer: float | None = None
    live: bool = True


def _assign(
    hits: list[dict[str, tuple[float, Observation]]], horizon: float, distinct: bool
) -> list[tuple[float, Observation]] | None:
    """One hit per member newer than ``horizon``, on distinct devices if asked (backtracking)."""
    cands = [
        sorted(((t, o) for t, o in h.values() if t > horizon), key=lambda e: -e[0]) for h in hits
    ]
    if any(not c for c in cands):
        return None
    order = sorted(range(len(cands)), key=lambda i: len(cands[i]))
    chosen: dict[int, tuple[float, Observation]] = {}
    used: set[str] = set()

    def go(pos: int) -> bool:
        if pos == len(order):
            return True
        i = order[pos]
        for t, o in cands[i]:
            if distinct and o.device in used:
                continue
            chosen[i] = (t, o)
            used.add(o.device)
            if go(pos + 1):
                return True
            used.discard(o.device)
        return False

    if not go(0):
        return None
    return [chosen[i] for i in range(len(cands))]


class CorrelationEvaluator(Evaluator):
    """Every member holds on (distinct) devices of one zone within ``within``."""

    def __init__(self, rule: Rule, index: int, arm: ArmTimer) -> None:
        super().__init__(rule, index, arm)
        cond = rule.when
        assert isinstance(cond, Correlation)
        self.members: tuple[Member, ...] = cond.all_of
        self.within = cond.within
        self.hold = cond.hold if cond.hold is not None else cond.within
        self.distinct = cond.distinct_devices
        self._states: dict[str, ZoneState] = {}
        self._samples: dict[str, deque[tuple[float, float]]] = {}

    def states(self) -> dict[str, Any]:
        return self._states

    def _expiry(self, st: ZoneState) -> float:
        """When the newest hit of the zone becomes too old to matter."""
        newest = max(ht for h in st.hits for ht, _ in h.values())
        return newest + max(self.within, self.hold)

    def _prune(self, st: ZoneState, now: float) -> None:
        horizon = now - max(self.within, self.hold)
        for h in st.hits:
            for dev in [d for d, (ht, _) in h.items() if ht <= horizon]:
                del h[dev]

    def _member_holds(self, m: int, obs: Observation, t: float) -> bool | None:
        member = self.members[m]
        if obs.value is None:
            return None
        if member.per_minute is not None:
            samples = self._samples.setdefault(f"{m}/{obs.site}/{obs.device}", deque())
            rate = rate_of(samples, t, float(obs.value), member.over)
            return None if rate is None else OPS[member.op](rate, member.per_minute)
        return OPS[member.op](obs.value, member.value)

    def observe(self, obs: Observation, t: float, member: int) -> list[Hit]:
        if obs.zone is None:
            return []
        holds = self._member_holds(member, obs, t)
        if holds is None:
            return []
        key = f"{obs.site}/{obs.zone}"
        st = self._states.get(key)
        if st is None:
            if not holds:
                return []
            st = self._states[key] = ZoneState(obs.site, obs.zone, [{} for _ in self.members])
        if holds:
            st.hits[member][obs.device] = (t, obs)
        else:
            st.hits[member].pop(obs.device, None)
        self._prune(st, t)
        st.live = not obs.historical
        match = _assign(st.hits, t - (self.hold if st.active else self.within), self.distinct)
        if match is None:
            if st.active:
                st.active = False
                return [Hit(key, st.site, st.zone, False, t, st.live, (obs,), obs)]
            if any(st.hits):
                self._arm(st, key, self._expiry(st))  # forget stale hits of a quiet zone
            else:
                del self._states[key]
            return []
        st.active = True
        self._arm(st, key, min(ht for ht, _ in match) + self.hold)
        if not holds:
            return []
        evidence = tuple(o for _, o in sorted(match, key=lambda e: e[0]))
        return [Hit(key, st.site, st.zone, True, t, st.live, evidence, obs)]

    def on_timer(self, key: str, due: float, now: float) -> list[Hit]:
        st = self._states.get(key)
        if st is None or st.timer != due:
            return []
        st.timer = None
        if not st.active:
            self._prune(st, now)
            if any(st.hits):
                self._arm(st, key, self._expiry(st))
            else:
                del self._states[key]
            return []
        match = _assign(st.hits, now - self.hold, self.distinct)
        if match is not None:
            self._arm(st, key, min(ht for ht, _ in match) + self.hold)
            return []
        st.active = False
        hit = Hit(key, st.site, st.zone, False, due, True, (), None, "window_expired")
        self._prune(st, now)
        if any(st.hits):
            self._arm(st, key, self._expiry(st))
        else:
            del self._states[key]
        return [hit]

    def export(self) -> dict[str, Any]:
        return {
            "zones": {
                k: {
                    "site": s.site,
                    "zone": s.zone,
                    "hits": [{d: [ht, dump_obs(o)] for d, (ht, o) in h.items()} for h in s.hits],
                    "active": s.active,
                    "timer": s.timer,
                    "live": s.live,
                }
                for k, s in self._states.items()
            },
            "samples": {k: [list(x) for x in v] for k, v in self._samples.items()},
        }

    def load(self, data: dict[str, Any]) -> None:
        self._states = {}
        for k, d in data.get("zones", {}).items():
            hits: list[dict[str, tuple[float, Observation]]] = []
            for h in d["hits"][: len(self.members)]:
                member_hits: dict[str, tuple[float, Observation]] = {}
                for dev, (ht, o) in h.items():
                    obs = load_obs(o)
                    if obs is not None:
                        member_hits[str(dev)] = (float(ht), obs)
                hits.append(member_hits)
            hits.extend({} for _ in range(len(self.members) - len(hits)))
            self._states[k] = ZoneState(
                str(d["site"]),
                str(d["zone"]),
                hits,
                bool(d["active"]),
                opt_float(d.get("timer")),
                bool(d.get("live", True)),
            )
        self._samples = {
            k: deque((float(a), float(b)) for a, b in v) for k, v in data.get("samples", {}).items()
        }

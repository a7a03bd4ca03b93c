"""The pure rule evaluator shared by the edge and the cloud.

``RuleEngine(ruleset)`` keeps state per (rule, source) in memory. Feed it observations in
per-device order with :meth:`RuleEngine.observe` and call :meth:`RuleEngine.advance` with the
current time to fire timers (``for``, ``no_data``, window expiry, deferred raises). Nothing
reads a clock, so a replay of the same inputs gives the same actions.

The alert layer on top of the condition evaluators guarantees:

* at most one raised alert per (rule, site, subject) — a zone subject stays raised while any of
  its devices holds the condition and clears when the last one lets go;
* historical (replayed) observations update state and may clear, but never raise;
* ``min_interval``: no second raise for the same subject sooner than that after the first;
  if the condition still holds when the interval ends, the raise happens then;
* ``schedule``: a raise only inside the rule's time windows, in the site's time zone.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from protocols.rules.actions import (
    Action,
    ClearAlert,
    CommandTarget,
    Notify,
    RaiseAlert,
    SendCommand,
)
from protocols.rules.correlation import CorrelationEvaluator
from protocols.rules.evaluators import (
    ArmTimer,
    CountEvaluator,
    Evaluator,
    Hit,
    NoDataEvaluator,
    RateEvaluator,
    ThresholdEvaluator,
    opt_float,
)
from protocols.rules.language import (
    CommandSpec,
    Correlation,
    Count,
    Event,
    NoData,
    NotifySpec,
    Rate,
    Rule,
    RuleSet,
    Scope,
    Selector,
    Threshold,
)
from protocols.rules.matching import (
    IndexKey,
    Matcher,
    both,
    compile_selector,
    in_schedule,
    index_keys,
    zone_info,
)
from protocols.rules.observations import Observation, Signal

log = logging.getLogger(__name__)
SNAPSHOT_VERSION = 1
MAX_ROUTES = 10_000
"""Cached (kind, signal) routes; cleared when full, so odd metric names cannot grow memory."""


def make_evaluator(rule: Rule, index: int, arm: ArmTimer) -> Evaluator:
    cond = rule.when
    if isinstance(cond, Threshold):
        return ThresholdEvaluator(rule, index, arm)
    if isinstance(cond, Rate):
        return RateEvaluator(rule, index, arm)
    if isinstance(cond, Count | Event):
        return CountEvaluator(rule, index, arm)
    if isinstance(cond, NoData):
        return NoDataEvaluator(rule, index, arm)
    return CorrelationEvaluator(rule, index, arm)


_Entry = tuple["_RuleRuntime", int, Matcher | None]
"""(rule, member, extra filter): member 0 is the rule's selector, 1 ``clear_on``; for a
correlation, the member's index."""


@dataclass(slots=True)
class AlertState:
    """The alert layer's memory for one (rule, site, subject)."""

    site: str
    subject: str
    sources: set[str] = field(default_factory=set)
    raised: bool = False
    last_raise: float | None = None
    live: bool = True
    timer: float | None = None
    evidence: tuple[Observation, ...] = ()
    ctx: Observation | None = None

    def export(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "subject": self.subject,
            "sources": sorted(self.sources),
            "raised": self.raised,
            "last_raise": self.last_raise,
            "live": self.live,
            "timer": self.timer,
            "evidence": [o.model_dump(mode="json", exclude_none=True) for o in self.evidence],
            "ctx": None
            if self.ctx is None
            else self.ctx.model_dump(mode="json", exclude_none=True),
        }

    @classmethod
    def load(cls, d: Mapping[str, Any]) -> AlertState:
        ctx = d.get("ctx")
        return cls(
            site=str(d["site"]),
            subject=str(d["subject"]),
            sources={str(s) for s in d.get("sources", ())},
            raised=bool(d.get("raised", False)),
            last_raise=opt_float(d.get("last_raise")),
            live=bool(d.get("live", True)),
            timer=opt_float(d.get("timer")),
            evidence=tuple(Observation.model_validate(o) for o in d.get("evidence", ())),
            ctx=None if ctx is None else Observation.model_validate(ctx),
        )


@dataclass(slots=True)
class _RuleRuntime:
    rule: Rule
    index: int
    evaluator: Evaluator
    fingerprint: str
    alerts: dict[str, AlertState] = field(default_factory=dict)


def _fingerprint(rule: Rule) -> str:
    return json.dumps(rule.to_dict(), sort_keys=True, ensure_ascii=False)


_MIN_DT = datetime.min.replace(tzinfo=UTC)
_MAX_DT = datetime.max.replace(tzinfo=UTC)


def _dt(t: float) -> datetime:
    """Epoch seconds as an aware datetime, clamped: a device clock in year 9999 plus a timer
    must not make ``advance`` fail."""
    try:
        return datetime.fromtimestamp(t, UTC)
    except (OverflowError, OSError, ValueError):
        return _MAX_DT if t > 0 else _MIN_DT


class RuleEngine:
    """Evaluate a :class:`RuleSet` over a stream of observations. Not thread-safe: one owner.

    ``timezones`` maps a site id to its IANA time zone for schedules; ``default_timezone``
    covers the others. Disabled rules are skipped.
    """

    def __init__(
        self,
        ruleset: RuleSet,
        *,
        timezones: Mapping[str, str] | None = None,
        default_timezone: str = "UTC",
    ) -> None:
        self.ruleset = ruleset
        self.timezones = dict(timezones or {})
        self.default_timezone = default_timezone
        zone_info(default_timezone)  # fail at start on a bad name, not at the first schedule
        for tz in self.timezones.values():
            zone_info(tz)
        self._timers: list[tuple[float, int, int, str]] = []
        self._seq = 0
        self._rules: list[_RuleRuntime] = []
        self._index: dict[IndexKey, list[_Entry]] = {}
        self._routes: dict[tuple[Any, Signal], list[_Entry]] = {}
        self._resumed = False
        for rule in ruleset.rules:
            if not rule.enabled:
                continue
            index = len(self._rules)
            rt = _RuleRuntime(
                rule, index, make_evaluator(rule, index, self._arm), _fingerprint(rule)
            )
            self._rules.append(rt)
            self._add_to_index(rt)

    # --- wiring -------------------------------------------------------------------------------

    def _add_to_index(self, rt: _RuleRuntime) -> None:
        rule = rt.rule
        cond = rule.when
        if isinstance(cond, Correlation):
            base = compile_selector(rule.select, indexed=False)
            for m, member in enumerate(cond.all_of):
                own = compile_selector(member.select, indexed=True)
                self._index_entry(member.select, (rt, m, both(base, own)))
            return
        assert rule.select is not None
        self._index_entry(rule.select, (rt, 0, compile_selector(rule.select, indexed=True)))
        if isinstance(cond, Count | Event) and cond.clear_on is not None:
            self._index_entry(cond.clear_on, (rt, 1, compile_selector(cond.clear_on, indexed=True)))

    def _index_entry(self, sel: Selector, entry: _Entry) -> None:
        for key in index_keys(sel):
            self._index.setdefault(key, []).append(entry)

    def _route(self, kind: Any, sig: Signal) -> list[_Entry]:
        """Every entry that may concern (kind, signal), in rule order; cached."""
        keys: list[tuple[Any, Signal | None]] = [(None, sig), (None, None)]
        if kind is not None:
            keys += [(kind, sig), (kind, None)]
        found = [entry for key in keys for entry in self._index.get(key, ())]
        found.sort(key=lambda e: (e[0].index, e[1]))
        if len(self._routes) >= MAX_ROUTES:
            self._routes.clear()
        self._routes[(kind, sig)] = found
        return found

    def _arm(self, due: float, index: int, key: str) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (due, self._seq, index, key))

    # --- the two inputs -----------------------------------------------------------------------

    def observe(self, obs: Observation) -> list[Action]:
        """Process one observation; returns the actions it causes (often none)."""
        if obs.metric is not None:
            sig: Signal = ("metric", obs.metric)
        elif obs.event is not None:
            sig = ("event", obs.event)
        elif obs.access is not None:
            sig = ("access", obs.access.value)
        else:
            return []
        entries = self._routes.get((obs.kind, sig))
        if entries is None:
            entries = self._route(obs.kind, sig)
        if not entries:
            return []
        t = obs.ts.timestamp()
        out: list[Action] = []
        for rt, member, match in entries:
            if match is not None and not match(obs):
                continue
            for hit in rt.evaluator.observe(obs, t, member):
                out.extend(self._apply(rt, hit))
        return out

    def advance(self, now: datetime | float) -> list[Action]:
        """Fire every timer due at or before ``now`` (a datetime, naive = UTC, or epoch seconds)."""
        if isinstance(now, datetime):
            t_now = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).timestamp()
        else:
            t_now = float(now)
        if self._resumed:
            # First tick after a restore: the engine heard nothing while it was down, so
            # silence is judged from now on, not from the snapshot (no alert storm on restart).
            self._resumed = False
            for runtime in self._rules:
                if isinstance(runtime.evaluator, NoDataEvaluator):
                    runtime.evaluator.listening_since = t_now
        out: list[Action] = []
        timers = self._timers
        while timers and timers[0][0] <= t_now:
            due, _, index, key = heapq.heappop(timers)
            rt = self._rules[index] if 0 <= index < len(self._rules) else None
            if rt is None:
                continue
            if key.startswith("\x00"):
                out.extend(self._alert_timer(rt, key[1:], due))
                continue
            for hit in rt.evaluator.on_timer(key, due, t_now):
                out.extend(self._apply(rt, hit))
        return out

    def stats(self) -> dict[str, int]:
        """Sizes for monitoring: rules, tracked sources, alert states, raised alerts, timers."""
        return {
            "rules": len(self._rules),
            "sources": sum(len(rt.evaluator.states()) for rt in self._rules),
            "alert_states": sum(len(rt.alerts) for rt in self._rules),
            "raised": len(self.active()),
            "timers": len(self._timers),
        }

    def next_due(self) -> datetime | None:
        """When the earliest pending timer is due (may be a stale one), or None."""
        return _dt(self._timers[0][0]) if self._timers else None

    # --- the alert layer ----------------------------------------------------------------------

    def _apply(self, rt: _RuleRuntime, hit: Hit) -> list[Action]:
        skey = f"{hit.site}/{hit.subject}"
        st = rt.alerts.get(skey)
        if hit.active:
            if st is None:
                st = rt.alerts[skey] = AlertState(hit.site, hit.subject)
            st.sources.add(hit.source)
            st.live = hit.live
            if hit.evidence:
                st.evidence = hit.evidence
            if hit.ctx is not None:
                st.ctx = hit.ctx
            if st.raised or not hit.live:
                return []
            return self._try_raise(rt, skey, st, hit.t)
        if st is None:
            return []
        st.sources.discard(hit.source)
        if st.sources:
            return []
        out: list[Action] = []
        if st.raised:
            st.raised = False
            out = self._clear_actions(rt, st, hit)
        interval = rt.rule.min_interval
        if st.last_raise is None or interval is None or hit.t >= st.last_raise + interval:
            del rt.alerts[skey]
        return out

    def _try_raise(self, rt: _RuleRuntime, skey: str, st: AlertState, t: float) -> list[Action]:
        rule = rt.rule
        if rule.schedule is not None:
            tz = self.timezones.get(st.site, self.default_timezone)
            if not in_schedule(rule.schedule, t, tz):
                return []
        interval = rule.min_interval
        if interval is not None and st.last_raise is not None and t < st.last_raise + interval:
            due = st.last_raise + interval
            if st.timer is None or due < st.timer:
                st.timer = due
                self._arm(due, rt.index, "\x00" + skey)
            return []
        st.raised = True
        st.last_raise = t
        return self._raise_actions(rt, st, t)

    def _alert_timer(self, rt: _RuleRuntime, skey: str, due: float) -> list[Action]:
        st = rt.alerts.get(skey)
        if st is None or st.timer != due:
            return []
        st.timer = None
        if st.raised or not st.sources or not st.live:
            if not st.sources and not st.raised:
                del rt.alerts[skey]
            return []
        return self._try_raise(rt, skey, st, due)

    def _raise_actions(self, rt: _RuleRuntime, st: AlertState, t: float) -> list[Action]:
        rule = rt.rule
        ctx = st.ctx
        out: list[Action] = []
        if rule.alert:
            out.append(
                RaiseAlert(
                    rule_id=rule.id,
                    site=st.site,
                    subject=st.subject,
                    subject_type=rule.subject,
                    ts=_dt(t),
                    severity=rule.severity,
                    title_zh=rule.title.zh,
                    title_en=rule.title.en,
                    zone=ctx.zone if ctx else None,
                    building=ctx.building if ctx else None,
                    device=ctx.device if ctx else None,
                    evidence=st.evidence,
                )
            )
        out.extend(self._specs(rt, st, rule.then, t, on_clear=False))
        return out

    def _clear_actions(self, rt: _RuleRuntime, st: AlertState, hit: Hit) -> list[Action]:
        rule = rt.rule
        out: list[Action] = []
        if rule.alert:
            out.append(
                ClearAlert(
                    rule_id=rule.id,
                    site=st.site,
                    subject=st.subject,
                    subject_type=rule.subject,
                    ts=_dt(hit.t),
                    evidence=hit.evidence,
                    reason=hit.reason,
                )
            )
        out.extend(self._specs(rt, st, rule.on_clear, hit.t, on_clear=True))
        return out

    def _specs(
        self,
        rt: _RuleRuntime,
        st: AlertState,
        specs: Iterable[CommandSpec | NotifySpec],
        t: float,
        *,
        on_clear: bool,
    ) -> list[Action]:
        rule = rt.rule
        ctx = st.ctx
        out: list[Action] = []
        for spec in specs:
            if isinstance(spec, NotifySpec):
                out.append(
                    Notify(
                        rule_id=rule.id,
                        site=st.site,
                        subject=st.subject,
                        subject_type=rule.subject,
                        ts=_dt(t),
                        channels=spec.notify,
                        severity=rule.severity,
                        title_zh=rule.title.zh,
                        title_en=rule.title.en,
                        on_clear=on_clear,
                    )
                )
                continue
            target = _target(spec, st, ctx)
            if target is None:
                log.warning(
                    "rule %s: %s for %s/%s skipped: the subject has no %s",
                    rule.id,
                    spec.command,
                    st.site,
                    st.subject,
                    spec.target.scope.value,
                )
                continue
            out.append(
                SendCommand(
                    rule_id=rule.id,
                    site=st.site,
                    subject=st.subject,
                    subject_type=rule.subject,
                    ts=_dt(t),
                    name=spec.command,
                    target=target,
                    params=dict(spec.params),
                    on_clear=on_clear,
                )
            )
        return out

    # --- inspection and hand-over -------------------------------------------------------------

    def active(self) -> list[tuple[str, str, str]]:
        """``(rule_id, site, subject)`` of every raised, not yet cleared alert.

        Rules with ``alert: false`` (actions only) are not listed.
        """
        return sorted(
            (rt.rule.id, st.site, st.subject)
            for rt in self._rules
            if rt.rule.alert
            for st in rt.alerts.values()
            if st.raised
        )

    def snapshot(self, site: str | None = None) -> dict[str, Any]:
        """All state as plain JSON-able data (only ``site``'s if given), for :meth:`restore`."""
        prefix = None if site is None else f"{site}/"
        rules: dict[str, Any] = {}
        for rt in self._rules:
            ev = rt.evaluator.export()
            alerts = {k: a.export() for k, a in rt.alerts.items()}
            if prefix is not None:
                ev = _filter_prefix(ev, prefix)
                alerts = {k: v for k, v in alerts.items() if k.startswith(prefix)}
            rules[rt.rule.id] = {"fingerprint": rt.fingerprint, "state": ev, "alerts": alerts}
        return {"v": SNAPSHOT_VERSION, "rules": rules}

    def load(self, data: Mapping[str, Any], *, restart_silence: bool = True) -> None:
        """Merge a snapshot into this engine (replacing state of the same keys).

        State of a rule whose definition changed since the snapshot is dropped: its
        meaning would differ. Unknown rules are ignored. With ``restart_silence`` (default)
        ``no_data`` silence is judged from the first :meth:`advance` after the load, so a
        process that was down for hours does not raise "no data" for every device at once;
        pass False for a live hand-over between two running processes.
        """
        if not isinstance(data, Mapping) or data.get("v") != SNAPSHOT_VERSION:
            version = data.get("v") if isinstance(data, Mapping) else None
            raise ValueError(f"snapshot version {version!r} is not {SNAPSHOT_VERSION}")
        try:
            staged = self._stage(data)
        except (KeyError, TypeError, AttributeError, ValueError, ValidationError) as exc:
            raise ValueError(f"snapshot not usable: {exc}") from exc
        # Nothing changed until here: a bad snapshot leaves the engine as it was.
        for rt, evaluator, alerts in staged:
            rt.evaluator = evaluator
            rt.alerts.update(alerts)
        self._resumed = restart_silence
        self._timers = []
        for rt in self._rules:
            rt.evaluator.rearm_all()
            for key, a in rt.alerts.items():
                if a.timer is not None:
                    self._arm(a.timer, rt.index, "\x00" + key)

    def _stage(
        self, data: Mapping[str, Any]
    ) -> list[tuple[_RuleRuntime, Evaluator, dict[str, AlertState]]]:
        by_id = {rt.rule.id: rt for rt in self._rules}
        staged = []
        for rule_id, part in data["rules"].items():
            rt = by_id.get(rule_id)
            if rt is None or part.get("fingerprint") != rt.fingerprint:
                log.info("snapshot state of rule %s dropped: rule missing or changed", rule_id)
                continue
            evaluator = make_evaluator(rt.rule, rt.index, self._arm)
            evaluator.load(_merge_state(rt.evaluator.export(), part.get("state", {})))
            alerts = {str(k): AlertState.load(a) for k, a in part.get("alerts", {}).items()}
            staged.append((rt, evaluator, alerts))
        return staged

    @classmethod
    def restore(
        cls,
        ruleset: RuleSet,
        data: Mapping[str, Any],
        *,
        timezones: Mapping[str, str] | None = None,
        default_timezone: str = "UTC",
        restart_silence: bool = True,
    ) -> RuleEngine:
        """A new engine for ``ruleset`` continuing from ``data`` (from :meth:`snapshot`)."""
        engine = cls(ruleset, timezones=timezones, default_timezone=default_timezone)
        engine.load(data, restart_silence=restart_silence)
        return engine


def _target(spec: CommandSpec, st: AlertState, ctx: Observation | None) -> CommandTarget | None:
    scope = spec.target.scope
    zone = ctx.zone if ctx is not None else None
    building = ctx.building if ctx is not None else None
    device = ctx.device if ctx is not None else None
    if scope is Scope.ZONE and zone is None:
        return None
    if scope is Scope.BUILDING and building is None:
        return None
    if scope is Scope.DEVICE and device is None:
        return None
    return CommandTarget(
        site=st.site,
        kind=spec.target.kind,
        scope=scope,
        zone=zone if scope is Scope.ZONE else None,
        building=building if scope is Scope.BUILDING else None,
        device=device if scope is Scope.DEVICE else None,
        tags=spec.target.tags,
    )


def _filter_prefix(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Keep entries whose key starts with ``prefix`` (one level down for nested exports)."""
    out: dict[str, Any] = {}
    for k, v in state.items():
        if k in ("zones", "samples") and isinstance(v, dict):
            out[k] = {
                kk: vv
                for kk, vv in v.items()
                if kk.startswith(prefix) or kk.split("/", 1)[-1].startswith(prefix)
            }
        elif k.startswith(prefix):
            out[k] = v
    return out


def _merge_state(current: dict[str, Any], incoming: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    for k, v in incoming.items():
        if k in ("zones", "samples") and isinstance(v, dict):
            merged[k] = {**current.get(k, {}), **v}
        else:
            merged[k] = v
    return merged

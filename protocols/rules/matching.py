"""Selectors compiled to predicates, the (kind, signal) index keys, and schedule windows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from protocols.kinds import DeviceKind
from protocols.rules.language import DAYS, Schedule, Selector
from protocols.rules.observations import Observation, Signal

Matcher = Callable[[Observation], bool]
IndexKey = tuple[DeviceKind | None, Signal | None]


def compile_selector(sel: Selector | None, *, indexed: bool) -> Matcher | None:
    """A predicate for ``sel``, or None when there is nothing to check.

    ``indexed=True``: the observation was found through this selector's own (kind, signal)
    index keys, so only the other filters are checked. ``indexed=False`` checks the kind too
    (used for a correlation's rule-level selector, which is not indexed).
    """
    if sel is None:
        return None
    checks: list[Matcher] = []
    if sel.kind is not None and not indexed:
        kinds = frozenset(sel.kind)
        checks.append(lambda o: o.kind in kinds)
    if sel.decision is not None:
        decisions = frozenset(sel.decision)
        checks.append(lambda o: o.decision in decisions)
    if sel.reason is not None:
        reasons = frozenset(sel.reason)
        checks.append(lambda o: o.reason in reasons)
    if sel.devices is not None:
        devices = frozenset(sel.devices)
        checks.append(lambda o: o.device in devices)
    if sel.zones is not None:
        zones = frozenset(sel.zones)
        checks.append(lambda o: o.zone in zones)
    if sel.buildings is not None:
        buildings = frozenset(sel.buildings)
        checks.append(lambda o: o.building in buildings)
    if sel.sites is not None:
        sites = frozenset(sel.sites)
        checks.append(lambda o: o.site in sites)
    if sel.tags is not None:
        tags = frozenset(sel.tags)
        checks.append(lambda o: tags <= o.tags)
    return both(*checks)


def both(*checks: Matcher | None) -> Matcher | None:
    """All of ``checks`` (None entries ignored); None if there are none."""
    real = [c for c in checks if c is not None]
    if not real:
        return None
    if len(real) == 1:
        return real[0]
    return lambda o: all(check(o) for check in real)


def index_keys(sel: Selector) -> list[IndexKey]:
    """The (kind, signal) keys an observation must have to concern ``sel``; None = any."""
    kinds: list[DeviceKind | None] = list(sel.kind) if sel.kind is not None else [None]
    signals: list[Signal | None]
    if sel.metric is not None:
        signals = [("metric", sel.metric)]
    elif sel.event is not None:
        signals = [("event", sel.event)]
    elif sel.access is not None:
        signals = [("access", a.value) for a in sel.access]
    else:
        signals = [None]
    return [(k, s) for k in kinds for s in signals]


@lru_cache(maxsize=256)
def zone_info(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def in_schedule(schedule: Schedule, t: float, timezone: str) -> bool:
    """Whether epoch second ``t`` falls in one of the windows, in ``timezone`` local time."""
    try:
        local = datetime.fromtimestamp(t, zone_info(schedule.timezone or timezone))
    except (OverflowError, OSError, ValueError):  # a device clock far outside 1–9999
        return False
    minute = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    for w in schedule.windows:
        if w.from_ == w.to or (w.from_ == 0 and w.to == 1440):
            if today in w.days:
                return True
        elif w.from_ < w.to:
            if today in w.days and w.from_ <= minute < w.to:
                return True
        elif (today in w.days and minute >= w.from_) or (yesterday in w.days and minute < w.to):
            return True
    return False

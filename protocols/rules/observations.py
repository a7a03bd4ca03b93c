"""Observations: the one input of the rule evaluator, made from decoded uplink messages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, NamedTuple

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from protocols.codec import Decoded
from protocols.ids import Ident
from protocols.kinds import DeviceKind
from protocols.messages import (
    AccessDecision,
    AccessEvent,
    AccessKind,
    DeviceEvent,
    Name,
    Telemetry,
)

Signal = tuple[str, str]
"""``("metric", name)``, ``("event", name)`` or ``("access", kind)``: what an observation is."""


class Observation(BaseModel):
    """One fact about one device at one time: a reading, a device event or an access event.

    Exactly one of ``metric`` (with ``value``), ``event`` or ``access`` is set. ``historical``
    marks data replayed from a gateway's outbox: it updates rule state but never raises a new
    alert. Context (``kind``, ``zone``, ``building``, ``tags``) comes from the device registry.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    ts: AwareDatetime
    site: Ident
    gateway: Ident
    device: Ident = Field(description="The device; for access events, the door")
    kind: DeviceKind | None = None
    zone: Ident | None = None
    building: Ident | None = None
    tags: Annotated[frozenset[Name], Field(max_length=32)] = frozenset()
    metric: Name | None = None
    value: bool | Annotated[float, Field(allow_inf_nan=False)] | None = None
    event: Name | None = None
    access: AccessKind | None = None
    decision: AccessDecision | None = None
    reason: Name | None = None
    person: Ident | None = None
    historical: bool = False
    msg_id: Annotated[str, Field(max_length=64)] | None = None

    @model_validator(mode="after")
    def _one_signal(self) -> Observation:
        given = sum(x is not None for x in (self.metric, self.event, self.access))
        if given != 1:
            raise ValueError("exactly one of metric, event, access")
        return self

    @property
    def signal(self) -> Signal:
        if self.metric is not None:
            return ("metric", self.metric)
        if self.event is not None:
            return ("event", self.event)
        assert self.access is not None
        return ("access", self.access.value)


class DeviceInfo(NamedTuple):
    """What the registry knows about a device. A plain ``(kind, zone, building)`` also works."""

    kind: DeviceKind | None
    zone: str | None
    building: str | None
    tags: frozenset[str] = frozenset()


Lookup = Callable[
    [str, str],
    DeviceInfo | tuple[DeviceKind | str | None, str | None, str | None] | None,
]
"""``lookup(site, device)`` → ``(kind, zone, building)`` (or a :class:`DeviceInfo`), or None."""


def _context(
    lookup: Lookup, site: str, device: str
) -> tuple[DeviceKind | None, str | None, str | None, frozenset[str]]:
    info = lookup(site, device)
    if info is None:
        return None, None, None, frozenset()
    kind = info[0]
    tags: frozenset[str] = info[3] if len(info) > 3 else frozenset()
    return (DeviceKind(kind) if kind is not None else None), info[1], info[2], tags


def _make(**fields: Any) -> Observation:
    # The decoded message was validated already; skip re-validation on the hot path.
    fields.setdefault("kind", None)
    fields.setdefault("tags", frozenset())
    for name in ("value", "event", "access", "decision", "reason", "person", "metric"):
        fields.setdefault(name, None)
    return Observation.model_construct(**fields)


def observations_from(decoded: Decoded, lookup: Lookup) -> list[Observation]:
    """Turn a decoded Telemetry, DeviceEvent or AccessEvent into observations.

    Other messages (gateway state, command acks, downlink) give ``[]``. A device the lookup
    does not know still yields observations, with ``kind``/``zone``/``building`` None, so
    rules that select by kind or zone ignore it until the registry approves it.
    """
    msg = decoded.message
    site, gateway = decoded.topic.site, decoded.topic.gateway
    if isinstance(msg, Telemetry):
        out = []
        cache: dict[str, tuple[DeviceKind | None, str | None, str | None, frozenset[str]]] = {}
        for r in msg.readings:
            ctx = cache.get(r.device)
            if ctx is None:
                ctx = cache[r.device] = _context(lookup, site, r.device)
            out.append(
                _make(
                    ts=r.ts,
                    site=site,
                    gateway=gateway,
                    device=r.device,
                    kind=ctx[0],
                    zone=ctx[1],
                    building=ctx[2],
                    tags=ctx[3],
                    metric=r.metric,
                    value=r.value,
                    historical=msg.historical,
                    msg_id=msg.msg_id,
                )
            )
        return out
    if isinstance(msg, DeviceEvent):
        kind, zone, building, tags = _context(lookup, site, msg.device)
        return [
            _make(
                ts=msg.ts,
                site=site,
                gateway=gateway,
                device=msg.device,
                kind=kind,
                zone=zone,
                building=building,
                tags=tags,
                event=msg.event,
                value=msg.value,
                historical=msg.historical,
                msg_id=msg.msg_id,
            )
        ]
    if isinstance(msg, AccessEvent):
        kind, zone, building, tags = _context(lookup, site, msg.door)
        return [
            _make(
                ts=msg.ts,
                site=site,
                gateway=gateway,
                device=msg.door,
                kind=kind,
                zone=zone,
                building=building,
                tags=tags,
                access=msg.kind,
                decision=msg.decision,
                reason=msg.reason,
                person=msg.person_id,
                historical=msg.historical,
                msg_id=msg.msg_id,
            )
        ]
    return []


def reading(
    ts: datetime,
    device: str,
    metric: str,
    value: float | bool,
    *,
    site: str = "site1",
    gateway: str = "gw1",
    kind: DeviceKind | None = None,
    zone: str | None = None,
    building: str | None = None,
    historical: bool = False,
) -> Observation:
    """A validated metric observation; handy for simulators and tests."""
    return Observation(
        ts=ts,
        site=site,
        gateway=gateway,
        device=device,
        kind=kind,
        zone=zone,
        building=building,
        metric=metric,
        value=value,
        historical=historical,
    )

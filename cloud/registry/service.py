"""The registry: what is installed where, which gateways and devices are approved.

:class:`Registry` keeps an in-memory view of approvals and locations so that ingest and the
rules runner can ask without a database round trip (:meth:`Registry.lookup`). Writes go to the
database in the caller's transaction; call :meth:`Registry.refresh` after a rollback or when
another process may have changed the registry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.registry.sitefile import SiteFile
from cloud.registry.tables import (
    Approval,
    Building,
    Device,
    Floor,
    Gateway,
    Site,
    Unit,
    Zone,
)
from protocols.kinds import METRICS, DeviceKind
from protocols.messages import GatewayState, GatewayStatus

log = logging.getLogger(__name__)

TOUCH_EVERY = timedelta(seconds=10)
"""``devices.last_seen`` is written at most this often per device (liveness granularity)."""


class RegistryError(LookupError):
    """An operation on something the registry does not know (e.g. approving a missing device)."""


class DeviceLocation(NamedTuple):
    """What the rules runner needs to know about a device: ``(kind, zone, building, tags)``.

    ``tags`` are the device's boolean ``attrs`` that are true (e.g. ``living_alone``), which
    rule selectors can require. Matches ``protocols.rules.observations.DeviceInfo``.
    """

    kind: DeviceKind
    zone: str | None
    building: str | None
    tags: frozenset[str] = frozenset()


@dataclass(slots=True)
class _DeviceEntry:
    approval: Approval
    location: DeviceLocation | None
    last_seen: datetime | None


def infer_kind(metrics: Iterable[str]) -> DeviceKind | None:
    """The device kind whose metrics include all of ``metrics`` (the most specific one)."""
    wanted = set(metrics)
    if not wanted:
        return None
    fits = [
        kind
        for kind, ms in METRICS.items()
        if kind is not DeviceKind.GATEWAY and wanted <= {m.name for m in ms}
    ]
    return min(fits, key=lambda k: len(METRICS[k]), default=None)


class Registry:
    """Approval and location cache over the registry tables. Thread-safe for reads and admits."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._sites: dict[str, bool] = {}  # site -> auto_approve
        self._gateways: dict[tuple[str, str], Approval] = {}
        self._devices: dict[tuple[str, str], _DeviceEntry] = {}
        self.refresh()

    # -- reading -------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the cache from the database."""
        with Session(self._engine) as session:
            sites = {s.id: s.auto_approve for s in session.scalars(select(Site))}
            gateways = {
                (g.site, g.id): Approval(g.approval) for g in session.scalars(select(Gateway))
            }
            devices = {(d.site, d.id): _entry(d) for d in session.scalars(select(Device))}
        with self._lock:
            self._sites, self._gateways, self._devices = sites, gateways, devices

    def lookup(self, site: str, device: str) -> DeviceLocation | None:
        """``(kind, zone, building)`` of an approved device of known kind, else None.

        None means: do not evaluate rules for it (unknown, pending, rejected or kind unknown).
        """
        entry = self._devices.get((site, device))
        if entry is None or entry.approval is not Approval.APPROVED:
            return None
        return entry.location

    def device_approval(self, site: str, device: str) -> Approval | None:
        entry = self._devices.get((site, device))
        return None if entry is None else entry.approval

    def gateway_approval(self, site: str, gateway: str) -> Approval | None:
        return self._gateways.get((site, gateway))

    # -- ingest --------------------------------------------------------------------------------

    def admit(
        self,
        session: Session,
        site: str,
        gateway: str,
        devices: Mapping[str, tuple[frozenset[str], datetime]],
        now: datetime,
    ) -> set[str]:
        """Record that ``gateway`` sent data for ``devices`` (device → (metrics, latest ts)).

        Unknown gateways and devices are added as PENDING (or APPROVED when the site
        auto-approves, with the kind inferred from the metrics). Returns the devices whose data
        must be flagged pending; the gateway's own id is in it when the gateway is not approved.
        Runs in the caller's transaction; call :meth:`refresh` if that transaction fails.
        """
        with self._lock:
            auto = self._ensure_site(session, site)
            pending: set[str] = set()
            gw_approval = self._gateways.get((site, gateway))
            if gw_approval is None:
                gw_approval = Approval.APPROVED if auto else Approval.PENDING
                session.add(Gateway(site=site, id=gateway, approval=gw_approval, first_seen=now))
                self._gateways[(site, gateway)] = gw_approval
                log.info("new gateway %s/%s held as %s", site, gateway, gw_approval)
            if gw_approval is not Approval.APPROVED:
                pending.add(gateway)
            touches: list[dict[str, object]] = []
            for device, (metrics, ts) in devices.items():
                entry = self._devices.get((site, device))
                if entry is None and device == gateway:
                    # The gateway's own health readings: a device of kind gateway that
                    # follows the gateway's approval.
                    entry = self._add_self(session, site, gateway, ts, gw_approval)
                elif entry is None:
                    entry = self._add_device(session, site, gateway, device, metrics, ts, auto)
                elif entry.last_seen is None or ts - entry.last_seen >= TOUCH_EVERY:
                    touches.append({"site": site, "id": device, "last_seen": ts})
                    entry.last_seen = ts
                if entry.approval is not Approval.APPROVED:
                    pending.add(device)
            if touches:  # ORM bulk UPDATE by primary key: one executemany
                session.execute(update(Device), touches)
            return pending

    def _ensure_site(self, session: Session, site: str) -> bool:
        auto = self._sites.get(site)
        if auto is None:
            existing = session.get(Site, site)
            if existing is None:
                existing = Site(id=site, auto_approve=False)
                session.add(existing)
                session.flush()
            auto = existing.auto_approve
            self._sites[site] = auto
        return auto

    def _add_device(
        self,
        session: Session,
        site: str,
        gateway: str,
        device: str,
        metrics: frozenset[str],
        ts: datetime,
        auto: bool,
    ) -> _DeviceEntry:
        kind = infer_kind(metrics) if auto else None
        approval = Approval.APPROVED if auto else Approval.PENDING
        session.add(
            Device(
                site=site,
                id=device,
                gateway=gateway,
                kind=None if kind is None else kind.value,
                approval=approval.value,
                first_seen=ts,
                last_seen=ts,
            )
        )
        location = None if kind is None else DeviceLocation(kind, None, None)
        entry = _DeviceEntry(approval, location, ts)
        self._devices[(site, device)] = entry
        log.info("new device %s/%s (via %s) held as %s", site, device, gateway, approval)
        return entry

    def _add_self(
        self, session: Session, site: str, gateway: str, ts: datetime, approval: Approval
    ) -> _DeviceEntry:
        kind = DeviceKind.GATEWAY
        session.add(
            Device(
                site=site,
                id=gateway,
                gateway=gateway,
                kind=kind.value,
                approval=approval.value,
                first_seen=ts,
                last_seen=ts,
            )
        )
        entry = _DeviceEntry(approval, DeviceLocation(kind, None, None), ts)
        self._devices[(site, gateway)] = entry
        return entry

    def gateway_state(
        self, session: Session, site: str, gateway: str, state: GatewayState, now: datetime
    ) -> bool:
        """Apply a birth or will; returns True when the gateway's online flag changed.

        A will carries the time it was set (before the birth), so within one boot "offline"
        always wins and a later "online" of an ended boot is ignored; across boots the newer
        timestamp wins (an old boot's state arriving late is ignored).
        """
        with self._lock:
            auto = self._ensure_site(session, site)
            row = session.get(Gateway, (site, gateway))
            if row is None:
                approval = Approval.APPROVED if auto else Approval.PENDING
                row = Gateway(site=site, id=gateway, approval=approval.value, first_seen=now)
                session.add(row)
                self._gateways[(site, gateway)] = approval
            elif _stale(row, state):
                return False
            online = state.status is GatewayStatus.ONLINE
            changed = row.online != online
            row.online = online
            row.boot_id = state.boot_id
            row.agent_version = state.agent_version or row.agent_version
            row.state_reason = state.reason
            row.state_at = state.ts
            return changed

    # -- administration -----------------------------------------------------------------------

    def set_device_approval(
        self,
        session: Session,
        site: str,
        device: str,
        approval: Approval,
        kind: DeviceKind | None = None,
    ) -> None:
        """Approve or reject a device (optionally naming its kind); in the caller's transaction."""
        row = session.get(Device, (site, device))
        if row is None:
            raise RegistryError(f"device {site}/{device} is not registered")
        row.approval = approval.value
        if kind is not None:
            row.kind = kind.value
        session.flush()
        with self._lock:
            self._devices[(site, device)] = _entry(row)

    def set_gateway_approval(
        self, session: Session, site: str, gateway: str, approval: Approval
    ) -> None:
        row = session.get(Gateway, (site, gateway))
        if row is None:
            raise RegistryError(f"gateway {site}/{gateway} is not registered")
        row.approval = approval.value
        own = session.get(Device, (site, gateway))  # its own health readings follow it
        if own is not None:
            own.approval = approval.value
            own.kind = own.kind or DeviceKind.GATEWAY.value
        session.flush()
        with self._lock:
            self._gateways[(site, gateway)] = approval
            if own is not None:
                self._devices[(site, gateway)] = _entry(own)

    def pending(
        self, session: Session, site: str | None = None
    ) -> tuple[list[Gateway], list[Device]]:
        """Gateways and devices waiting for approval."""
        gq = select(Gateway).where(Gateway.approval == Approval.PENDING.value)
        dq = select(Device).where(Device.approval == Approval.PENDING.value)
        if site is not None:
            gq = gq.where(Gateway.site == site)
            dq = dq.where(Device.site == site)
        return list(session.scalars(gq)), list(session.scalars(dq))

    def import_site(self, session: Session, sitefile: SiteFile) -> None:
        """Create or update everything a site file declares; declared things are APPROVED.

        Idempotent: importing the same file twice changes nothing. Things not in the file are
        left alone (pending devices stay pending).
        """
        sid = sitefile.site
        session.merge(Site(id=sid, name=sitefile.name, auto_approve=sitefile.auto_approve))
        for b in sitefile.buildings:
            session.merge(Building(site=sid, id=b.id, name=b.name))
            for f in b.floors:
                session.merge(Floor(site=sid, id=f.id, building=b.id, level=f.level, name=f.name))
                for u in f.units:
                    session.merge(Unit(site=sid, id=u.id, building=b.id, floor=f.id, name=u.name))
        for z in sitefile.zones:
            session.merge(Zone(site=sid, id=z.id, name=z.name, building=z.building, floor=z.floor))
        approved = Approval.APPROVED.value
        for g in sitefile.gateways:
            gw = session.get(Gateway, (sid, g.id)) or Gateway(site=sid, id=g.id)
            gw.name, gw.building, gw.approval = g.name, g.building, approved
            gw.attrs = dict(g.attrs)
            session.add(gw)
            own = session.get(Device, (sid, g.id))  # its health readings, if seen already
            if own is not None:
                own.approval, own.kind = approved, own.kind or DeviceKind.GATEWAY.value
            for d in g.devices:
                dev = session.get(Device, (sid, d.id)) or Device(site=sid, id=d.id)
                dev.gateway, dev.kind, dev.name = g.id, d.kind.value, d.name
                dev.building, dev.floor, dev.unit, dev.zone = d.building, d.floor, d.unit, d.zone
                dev.report_interval_s, dev.approval, dev.attrs = (
                    d.report_interval_s,
                    approved,
                    dict(d.attrs),
                )
                session.add(dev)
        session.flush()
        self.refresh_site(session, sid)

    def refresh_site(self, session: Session, site: str) -> None:
        row = session.get(Site, site)
        gateways = session.scalars(select(Gateway).where(Gateway.site == site))
        devices = session.scalars(select(Device).where(Device.site == site))
        with self._lock:
            if row is not None:
                self._sites[site] = row.auto_approve
            for g in gateways:
                self._gateways[(site, g.id)] = Approval(g.approval)
            for d in devices:
                self._devices[(site, d.id)] = _entry(d)


def _stale(row: Gateway, state: GatewayState) -> bool:
    if row.boot_id == state.boot_id:
        return row.online is False and state.status is GatewayStatus.ONLINE
    return row.state_at is not None and state.ts < row.state_at


def _entry(row: Device) -> _DeviceEntry:
    location = None
    if row.kind is not None:
        try:
            tags = frozenset(k for k, v in (row.attrs or {}).items() if v is True)
            location = DeviceLocation(DeviceKind(row.kind), row.zone, row.building, tags)
        except ValueError:
            log.warning("device %s/%s has unknown kind %r", row.site, row.id, row.kind)
    return _DeviceEntry(Approval(row.approval), location, row.last_seen)

"""Device liveness: a device is offline after N missed reports at its kind's report interval.

The decision is a pure function (:func:`is_offline`); :func:`sweep` applies it to the registry
periodically and returns the changes so that a caller can raise or clear "offline" alerts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloud.registry.tables import Approval, Device
from protocols.kinds import DeviceKind

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 300.0
"""Expected seconds between two reports of a device whose kind has no entry below."""

REPORT_INTERVAL_S: dict[DeviceKind, float] = {
    # Event-driven detectors report a heartbeat rarely; continuous sensors often.
    DeviceKind.SMOKE: 3600.0,
    DeviceKind.WATER_LEAK: 3600.0,
    DeviceKind.SOS: 3600.0,
    DeviceKind.DOOR_CONTACT: 3600.0,
    DeviceKind.PIR: 3600.0,
    DeviceKind.PARKING: 3600.0,
    DeviceKind.SIREN: 3600.0,
    DeviceKind.DOOR_LOCK: 3600.0,
    DeviceKind.MANHOLE: 3600.0,
    DeviceKind.HEAT: 300.0,
    DeviceKind.TEMPERATURE: 300.0,
    DeviceKind.HUMIDITY: 300.0,
    DeviceKind.GAS: 60.0,
    DeviceKind.EBIKE_CHARGER: 60.0,
    DeviceKind.ELEVATOR: 60.0,
    DeviceKind.WATER_TANK: 600.0,
    DeviceKind.HYDRANT: 600.0,
    DeviceKind.CAMERA: 300.0,
    DeviceKind.GATEWAY: 60.0,
}
MISSED_REPORTS = 3


def report_interval(kind: str | None, override_s: float | None = None) -> float:
    """The expected report interval of a device: its own setting, else its kind's default."""
    if override_s is not None:
        return override_s
    if kind is None:
        return DEFAULT_INTERVAL_S
    try:
        return REPORT_INTERVAL_S.get(DeviceKind(kind), DEFAULT_INTERVAL_S)
    except ValueError:
        return DEFAULT_INTERVAL_S


def is_offline(
    last_seen: datetime | None, interval_s: float, now: datetime, missed: int = MISSED_REPORTS
) -> bool:
    """True when more than ``missed`` intervals passed since ``last_seen`` (or never seen)."""
    if last_seen is None:
        return True
    return now - last_seen > timedelta(seconds=interval_s * missed)


@dataclass(frozen=True, slots=True)
class LivenessChange:
    site: str
    device: str
    online: bool
    last_seen: datetime | None


def sweep(session: Session, now: datetime, missed: int = MISSED_REPORTS) -> list[LivenessChange]:
    """Update ``devices.online`` for every approved device; return the devices that changed.

    A device never seen stays ``online = None`` (unknown) until its first report.
    """
    changes: list[LivenessChange] = []
    rows = session.scalars(select(Device).where(Device.approval == Approval.APPROVED.value))
    for device in rows:
        if device.last_seen is None:
            continue
        interval = report_interval(device.kind, device.report_interval_s)
        online = not is_offline(device.last_seen, interval, now, missed)
        if device.online != online:
            device.online = online
            changes.append(LivenessChange(device.site, device.id, online, device.last_seen))
    return changes


OnLiveness = Callable[[Sequence[LivenessChange]], Awaitable[None]]


async def sweep_forever(
    engine: Engine,
    every_s: float = 30.0,
    on_changes: OnLiveness | None = None,
    missed: int = MISSED_REPORTS,
) -> None:
    """Run :func:`sweep` every ``every_s`` seconds (a named task in the app's TaskGroup)."""

    def once() -> list[LivenessChange]:
        with Session(engine) as session, session.begin():
            return sweep(session, datetime.now(UTC), missed)

    while True:
        try:
            changes = await asyncio.to_thread(once)
        except SQLAlchemyError as exc:
            log.warning("liveness sweep failed: %s", exc)
            changes = []
        if changes and on_changes is not None:
            try:
                await on_changes(changes)
            except Exception:  # supervisor boundary: a consumer's bug must not stop the sweep
                log.exception("liveness consumer failed")
        await asyncio.sleep(every_s)

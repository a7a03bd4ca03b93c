"""Welfare checks: a resident living alone whose activity devices show nothing for
``welfare_after_h`` hours gets a welfare incident, dispatched to the grid worker of the building
(else a volunteer team).

* :func:`due_welfare` decides, a pure function of the residents, their last activity and now;
* :func:`run_welfare` reads the database, opens and dispatches the incidents;
* :func:`welfare_loop` runs it periodically (a supervised task of the app).

Activity is any device event of an activity device, or a reading of one of its binary metrics
that is true (motion seen, door opened, button pressed). Periodic "nothing happened" reports (a
PIR's motion = false heartbeat) and analog values are not activity.

At most one open welfare incident per resident. Activity resuming does not close it: a person
does. Silence is counted from the latest of: the last activity, the resident's registration, the
last welfare check opened — so a closed check is followed by a new one only after another full
period of silence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.governance import incidents
from cloud.governance.errors import GovError
from cloud.governance.journal import SYSTEM, record
from cloud.governance.states import State
from cloud.governance.tables import Incident
from cloud.risk.tables import Resident, WelfareCheck
from cloud.storage.tables import DeviceEventRow, Reading, Series
from protocols.kinds import METRICS

log = logging.getLogger(__name__)

CATEGORY = "welfare_check"
SOURCE = "welfare"
ORG_KINDS: tuple[tuple[str, ...], ...] = (("grid",), ("volunteer",))
"""Who a welfare check goes to: a grid worker serving the building, else a volunteer team."""
ACTIVITY_METRICS: frozenset[str] = frozenset(
    m.name for metrics in METRICS.values() for m in metrics if m.binary
)
OPEN_STATES = frozenset(s.value for s in State if s.unresolved)


@dataclass(frozen=True, slots=True)
class WelfareSubject:
    """What :func:`due_welfare` needs to know about a resident."""

    resident_id: int
    site: str
    living_alone: bool
    devices: tuple[str, ...]
    after: timedelta
    since: datetime
    """Silence is counted from here at the earliest: registration or the last check opened."""


def due_welfare(
    residents: Iterable[WelfareSubject],
    last_activity: Mapping[int, datetime | None],
    now: datetime,
    *,
    open_checks: Collection[int] = (),
) -> list[WelfareSubject]:
    """The residents who need a welfare check at ``now``: living alone, with activity devices,
    no open check, and nothing seen for at least ``after`` (the boundary itself is due)."""
    due = []
    for subject in residents:
        if not subject.living_alone or not subject.devices:
            continue
        if subject.resident_id in open_checks:
            continue
        seen = last_activity.get(subject.resident_id)
        start = subject.since if seen is None else max(seen, subject.since)
        if now - start >= subject.after:
            due.append(subject)
    return due


def last_activity(db: Session, site: str, devices: Sequence[str]) -> datetime | None:
    """The newest sign of life from ``devices``: a device event, or a true binary reading."""
    if not devices:
        return None
    reading = db.scalar(
        select(func.max(Reading.ts))
        .join(Series, Series.id == Reading.series)
        .where(
            Series.site == site,
            Series.device.in_(list(devices)),
            Series.metric.in_(sorted(ACTIVITY_METRICS)),
            Reading.value != 0,
        )
    )
    event = db.scalar(
        select(func.max(DeviceEventRow.ts)).where(
            DeviceEventRow.site == site, DeviceEventRow.device.in_(list(devices))
        )
    )
    found = [t for t in (reading, event) if t is not None]
    return max(found) if found else None


def open_check_residents(db: Session) -> set[int]:
    """Residents with a welfare incident still unresolved."""
    rows = db.execute(
        select(WelfareCheck.resident_id)
        .join(Incident, Incident.id == WelfareCheck.incident_id)
        .where(Incident.state.in_(sorted(OPEN_STATES)))
    )
    return {int(r) for (r,) in rows}


def subjects(db: Session) -> list[WelfareSubject]:
    """Every resident living alone, with the time their silence may count from."""
    last_check = (
        select(WelfareCheck.resident_id, func.max(WelfareCheck.opened_at).label("opened"))
        .group_by(WelfareCheck.resident_id)
        .subquery()
    )
    rows = db.execute(
        select(Resident, last_check.c.opened)
        .outerjoin(last_check, last_check.c.resident_id == Resident.id)
        .where(Resident.living_alone.is_(True))
        .order_by(Resident.id)
    ).all()
    return [
        WelfareSubject(
            resident_id=r.id,
            site=r.site,
            living_alone=r.living_alone,
            devices=tuple(r.activity_devices or ()),
            after=timedelta(hours=r.welfare_after_h),
            since=r.created_at if opened is None else max(r.created_at, opened),
        )
        for r, opened in rows
    ]


def open_welfare(db: Session, resident: Resident, seen: datetime | None, now: datetime) -> int:
    """Open the resident's welfare incident and dispatch it; returns the incident id."""
    silent_h = None if seen is None else round((now - seen).total_seconds() / 3600, 1)
    incident_id = incidents.open_incident(
        db,
        site=resident.site,
        title=f"独居探访 Welfare check: {resident.building} {resident.unit}",
        category=CATEGORY,
        source=SOURCE,
        actor=SYSTEM,
        building=resident.building,
        severity="major",
        phase="response",
        now=now,
        location=f"{resident.building} {resident.unit}",
        description=(
            f"{resident.name} lives alone; no activity from "
            f"{', '.join(resident.activity_devices)} "
            + ("ever recorded" if seen is None else f"for {silent_h} h (since {seen.isoformat()})")
        ),
    )
    org_id = next(
        (
            found[0]
            for kinds in ORG_KINDS
            if (found := incidents.orgs_serving(db, resident.site, resident.building, kinds))
        ),
        None,
    )
    if org_id is None:
        nobody = f"no grid or volunteer organisation serves {resident.building}"
        record(db, incident_id, SYSTEM, "comment", now, {"text": nobody})
        log.warning("welfare check %s (site %s): %s", incident_id, resident.site, nobody)
    else:
        incidents.dispatch(db, incident_id, org_id=org_id, actor=SYSTEM, now=now)
    db.add(
        WelfareCheck(
            resident_id=resident.id,
            incident_id=incident_id,
            org_id=org_id,
            opened_at=now,
            last_activity=seen,
        )
    )
    db.flush()
    return incident_id


def run_welfare(sessions: sessionmaker[Session], now: datetime) -> list[int]:
    """One pass: open a welfare incident for every resident due; returns the incident ids.

    Each resident has a transaction of its own: one failure is logged and skipped.
    """
    with sessions() as db:
        people = subjects(db)
        open_now = open_check_residents(db)
        seen = {
            p.resident_id: last_activity(db, p.site, p.devices)
            for p in people
            if p.devices and p.resident_id not in open_now
        }
    opened = []
    for person in due_welfare(people, seen, now, open_checks=open_now):
        try:
            with sessions.begin() as db:
                if person.resident_id in open_check_residents(db):
                    continue  # another process opened one meanwhile
                resident = db.get_one(Resident, person.resident_id)
                opened.append(open_welfare(db, resident, seen.get(person.resident_id), now))
        except (SQLAlchemyError, GovError) as exc:
            log.error("welfare check for resident %s failed: %s", person.resident_id, exc)
    if opened:
        log.info("welfare checks opened: incidents %s", opened)
    return opened


async def welfare_loop(
    sessions: sessionmaker[Session],
    every_s: float,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """:func:`run_welfare` every ``every_s`` seconds, until cancelled."""
    while True:
        try:
            await asyncio.to_thread(run_welfare, sessions, clock())
        except SQLAlchemyError as exc:
            log.warning("welfare pass failed: %s", exc)
        await asyncio.sleep(every_s)

"""The whistle (吹哨报到): summon departments to an incident; each reports ack → arrive →
resolve, each stage within its own deadline. The board shows who has reported and who has not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.governance.errors import Invalid, NotFound, Refused
from cloud.governance.journal import record
from cloud.governance.models import StageDeadlines, WhistleOut
from cloud.governance.states import Action, State, next_state
from cloud.governance.tables import Incident, Organisation, Whistle

StageName = Literal["ack", "arrive", "resolve"]
STAGES: tuple[StageName, ...] = ("ack", "arrive", "resolve")
_DONE = {"ack": "acked_at", "arrive": "arrived_at", "resolve": "resolved_at"}
_DUE = {"ack": "ack_due", "arrive": "arrive_due", "resolve": "resolve_due"}


@dataclass(frozen=True, slots=True)
class StageTimes:
    """A whistle's deadlines and reports, as plain values (the pure functions' input)."""

    ack_due: datetime
    arrive_due: datetime
    resolve_due: datetime
    acked_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None

    @classmethod
    def of(cls, row: Whistle) -> StageTimes:
        return cls(row.ack_due, row.arrive_due, row.resolve_due,
                   row.acked_at, row.arrived_at, row.resolved_at)  # fmt: skip


def pending_stage(t: StageTimes) -> StageName | None:
    """The next stage the department must report, None when it reported all three."""
    for stage in STAGES:
        if getattr(t, _DONE[stage]) is None:
            return stage
    return None


def overdue_stage(t: StageTimes, now: datetime) -> StageName | None:
    """The pending stage if its deadline has passed."""
    stage = pending_stage(t)
    if stage is None or getattr(t, _DUE[stage]) > now:
        return None
    return stage


def _out(row: Whistle, org: Organisation, now: datetime) -> WhistleOut:
    return WhistleOut(
        id=row.id,
        incident_id=row.incident_id,
        org_id=row.org_id,
        org_name=org.name,
        org_name_en=org.name_en,
        blown_at=row.blown_at,
        blown_by=row.blown_by,
        reason=row.reason,
        auto=row.auto,
        ack_due=row.ack_due,
        arrive_due=row.arrive_due,
        resolve_due=row.resolve_due,
        acked_at=row.acked_at,
        arrived_at=row.arrived_at,
        resolved_at=row.resolved_at,
        reminders=row.reminders,
        overdue_stage=overdue_stage(StageTimes.of(row), now),
        escalated_stage=row.escalated_stage,
    )


def list_whistles(
    db: Session,
    now: datetime,
    *,
    open_only: bool = False,
    site: str | None = None,
    incident_id: int | None = None,
    org_ids: Sequence[int] | None = None,
) -> list[WhistleOut]:
    """The board: newest first. ``open_only``: departments that have not resolved yet."""
    query = (
        select(Whistle, Organisation)
        .join(Organisation, Organisation.id == Whistle.org_id)
        .order_by(Whistle.id.desc())
    )
    if open_only:
        query = query.where(Whistle.resolved_at.is_(None))
    if site is not None:
        query = query.join(Incident, Incident.id == Whistle.incident_id).where(
            Incident.site == site
        )
    if incident_id is not None:
        query = query.where(Whistle.incident_id == incident_id)
    if org_ids is not None:
        query = query.where(Whistle.org_id.in_(list(org_ids)))
    return [_out(row, org, now) for row, org in db.execute(query).all()]


def whistles_of(db: Session, incident_id: int, now: datetime) -> list[WhistleOut]:
    return list(reversed(list_whistles(db, now, incident_id=incident_id)))


def get_whistle(db: Session, whistle_id: int) -> Whistle:
    row = db.get(Whistle, whistle_id)
    if row is None:
        raise NotFound("whistle", whistle_id)
    return row


def blow(
    db: Session,
    incident_id: int,
    org_ids: Sequence[int],
    *,
    reason: str,
    actor: str,
    now: datetime,
    auto: bool = False,
) -> list[int]:
    """One whistle per department (orgs of kind ``department`` of the incident's site), with
    stage deadlines from the org's ``deadlines``. A department already summoned and not yet
    resolved is not summoned twice. Returns the new whistles' ids."""
    incident = db.get(Incident, incident_id)
    if incident is None:
        raise NotFound("incident", incident_id)
    next_state(incident.id, State(incident.state), Action.WHISTLE)
    orgs = []
    for org_id in dict.fromkeys(org_ids):
        org = db.get(Organisation, org_id)
        if org is None:
            raise Invalid("departments", f"no organisation {org_id}")
        if org.kind != "department" or org.site != incident.site:
            raise Invalid(
                "departments",
                f"organisation {org_id} is a {org.kind} of site {org.site}, "
                f"not a department of {incident.site}",
            )
        orgs.append(org)
    open_for = set(
        db.scalars(
            select(Whistle.org_id).where(
                Whistle.incident_id == incident_id, Whistle.resolved_at.is_(None)
            )
        )
    )
    made = []
    for org in orgs:
        if org.id in open_for:
            continue
        limits = StageDeadlines.model_validate(org.deadlines or {})
        row = Whistle(
            incident_id=incident_id,
            org_id=org.id,
            blown_at=now,
            blown_by=actor,
            reason=reason,
            auto=auto,
            ack_due=now + timedelta(seconds=limits.ack_s),
            arrive_due=now + timedelta(seconds=limits.arrive_s),
            resolve_due=now + timedelta(seconds=limits.resolve_s),
            reminders=0,
        )
        db.add(row)
        db.flush()
        made.append(row.id)
        record(db, incident_id, actor, "whistle", now,
               {"whistle_id": row.id, "org_id": org.id, "org_name": org.name,
                "org_name_en": org.name_en, "reason": reason, "auto": auto})  # fmt: skip
    return made


def report(
    db: Session, whistle_id: int, stage: StageName, *, actor: str, now: datetime,
    note: str | None = None,
) -> Whistle:  # fmt: skip
    """The department reports a stage; stages go in order (409 otherwise)."""
    row = get_whistle(db, whistle_id)
    expected = pending_stage(StageTimes.of(row))
    if expected != stage:
        raise Refused(
            f"whistle {whistle_id}: cannot report {stage}; "
            + ("every stage is reported" if expected is None else f"next stage is {expected}"),
            conflict=True,
        )
    due: datetime = getattr(row, _DUE[stage])
    setattr(row, _DONE[stage], now)
    org = db.get_one(Organisation, row.org_id)
    record(db, row.incident_id, actor, f"whistle_{stage}", now,
           {"whistle_id": row.id, "org_id": row.org_id, "org_name": org.name,
            "org_name_en": org.name_en, "late": now > due, "note": note})  # fmt: skip
    db.flush()
    return row


def board_row(db: Session, row: Whistle, now: datetime) -> WhistleOut:
    return _out(row, db.get_one(Organisation, row.org_id), now)

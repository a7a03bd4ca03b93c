"""Incidents and work orders: open, dispatch, work, resolve, confirm, close — the service API.

Every function works inside the caller's transaction (flush, never commit) and writes a timeline
line for what it did. G2 (risk, welfare, drills) builds on :func:`open_incident`,
:func:`dispatch`, :func:`timeline`, :func:`get_incident` and :func:`orgs_serving`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alerts.tables import Alert
from cloud.governance import catalogue, journal, photos
from cloud.governance.errors import Invalid, NotFound, Refused
from cloud.governance.journal import SYSTEM, record
from cloud.governance.models import IncidentDetail, IncidentOut, PhotoRef, TimelineEntry
from cloud.governance.orgs import get_org, is_member
from cloud.governance.orgs import orgs_serving as orgs_serving
from cloud.governance.states import Action, State, allowed_actions, next_state
from cloud.governance.tables import (
    Incident,
    IncidentAlert,
    IncidentPhoto,
    Organisation,
)
from cloud.governance.whistles import whistles_of

__all__ = [
    "NO_ARGS",
    "SYSTEM",
    "ActionArgs",
    "act",
    "add_photo",
    "detail",
    "dispatch",
    "get_incident",
    "get_row",
    "link_alerts",
    "list_incidents",
    "open_incident",
    "orgs_serving",
    "timeline",
]

CLOSE_OVERRIDE_AFTER = timedelta(days=7)
"""A manager may close a resolved incident its resident never confirmed after this long (the
default; the app passes ``LINLI_GOV_CLOSE_OVERRIDE_AFTER_S``)."""


def _span(delta: timedelta) -> str:
    """A waiting time in words: "7 days", "36 hours", "90 minutes"."""
    seconds = int(delta.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} seconds"


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)


def get_row(db: Session, incident_id: int) -> Incident:
    row = db.get(Incident, incident_id)
    if row is None:
        raise NotFound("incident", incident_id)
    return row


def _out(db: Session, row: Incident, now: datetime) -> IncidentOut:
    org = None if row.org_id is None else db.get(Organisation, row.org_id)
    state = State(row.state)
    data: dict[str, Any] = {name: getattr(row, name) for name in IncidentOut.model_fields
                            if hasattr(Incident, name)}  # fmt: skip
    data["org_name"] = None if org is None else org.name
    data["org_name_en"] = None if org is None else org.name_en
    data["overdue"] = state.unresolved and row.due_at is not None and row.due_at < now
    return IncidentOut.model_validate(data)


def get_incident(db: Session, incident_id: int, *, now: datetime | None = None) -> IncidentOut:
    return _out(db, get_row(db, incident_id), _now(now))


def timeline(db: Session, incident_id: int) -> list[dict[str, Any]]:
    """``[{ts, actor, action, detail}]`` of the incident, oldest first."""
    return journal.timeline(db, incident_id)


def detail(db: Session, incident_id: int, *, now: datetime | None = None) -> IncidentDetail:
    """The incident with its timeline, whistles, grouped alerts and photos."""
    now = _now(now)
    row = get_row(db, incident_id)
    base = _out(db, row, now)
    alert_ids = db.scalars(
        select(IncidentAlert.alert_id)
        .where(IncidentAlert.incident_id == incident_id)
        .order_by(IncidentAlert.alert_id)
    )
    pics = db.execute(
        select(IncidentPhoto.id, IncidentPhoto.uploaded_by, IncidentPhoto.ts)
        .where(IncidentPhoto.incident_id == incident_id)
        .order_by(IncidentPhoto.id)
    ).all()
    return IncidentDetail(
        **base.model_dump(),
        timeline=[TimelineEntry.model_validate(e) for e in timeline(db, incident_id)],
        whistles=whistles_of(db, incident_id, now),
        alert_ids=list(alert_ids),
        photos=[PhotoRef(id=i, uploaded_by=u, ts=t) for i, u, t in pics],
        allowed_actions=[a.value for a in allowed_actions(State(row.state))],
    )


def link_alerts(
    db: Session, incident_id: int, alert_ids: Iterable[int], actor: str, now: datetime
) -> list[int]:
    """Group alerts into the incident (unknown ids: :class:`Invalid` naming ``alert_ids``)."""
    wanted = sorted(set(alert_ids))
    if not wanted:
        return []
    found = set(db.scalars(select(Alert.id).where(Alert.id.in_(wanted))))
    missing = [a for a in wanted if a not in found]
    if missing:
        raise Invalid("alert_ids", f"no alert {', '.join(map(str, missing))}")
    have = set(
        db.scalars(select(IncidentAlert.alert_id).where(IncidentAlert.incident_id == incident_id))
    )
    new = [a for a in wanted if a not in have]
    for alert_id in new:
        db.add(IncidentAlert(incident_id=incident_id, alert_id=alert_id))
    if new:
        record(db, incident_id, actor, "alerts_linked", now, {"alert_ids": new})
    return new


def open_incident(
    db: Session,
    *,
    site: str,
    title: str,
    category: str,
    source: str,
    actor: str,
    building: str | None = None,
    zone: str | None = None,
    severity: str = "minor",
    phase: str = "response",
    drill: bool = False,
    reporter: str | None = None,
    alert_ids: Sequence[int] = (),
    now: datetime | None = None,
    location: str | None = None,
    description: str | None = None,
    confirm_required: bool = False,
) -> int:
    """Open an incident; returns its id. ``category`` must be in the catalogue (its deadline
    sets ``due_at``); a ``report`` starts as ``reported``, anything else as ``open``.
    ``confirm_required``: closing waits for the reporting resident's confirmation."""
    now = _now(now)
    item = catalogue.item_for(db, category)
    row = Incident(
        site=site,
        title=title,
        category=category,
        building=building,
        zone=zone,
        location=location,
        description=description,
        source=source,
        reporter=reporter,
        confirm_required=confirm_required and reporter is not None,
        created_by=actor,
        state=(State.REPORTED if source == "report" else State.OPEN).value,
        severity=severity,
        phase=phase,
        drill=drill,
        created_at=now,
        due_at=now + timedelta(seconds=item.deadline_s),
    )
    db.add(row)
    db.flush()
    record(
        db,
        row.id,
        actor,
        "opened",
        now,
        {"source": source, "category": category, "state": row.state, "drill": drill,
         "due_at": row.due_at.isoformat() if row.due_at else None},
    )  # fmt: skip
    link_alerts(db, row.id, alert_ids, actor, now)
    return row.id


def _move(db: Session, row: Incident, action: Action, actor: str, now: datetime,
          detail: dict[str, Any] | None = None) -> None:  # fmt: skip
    before = State(row.state)
    after = next_state(row.id, before, action)
    row.state = after.value
    record(db, row.id, actor, action.value, now,
           {"from": before.value, "to": after.value, **(detail or {})})  # fmt: skip


def dispatch(
    db: Session,
    incident_id: int,
    *,
    org_id: int,
    actor: str,
    assignee: str | None = None,
    due_s: int | None = None,
    now: datetime | None = None,
) -> IncidentOut:
    """Hand the incident to an organisation (and optionally one of its members) with a
    deadline: ``due_s`` from now, else the earlier deadline is kept."""
    now = _now(now)
    row = get_row(db, incident_id)
    org = get_org(db, org_id, field="org_id")
    if org.site != row.site:
        raise Invalid("org_id", f"organisation {org_id} serves site {org.site}, not {row.site}")
    if assignee is not None and not is_member(db, org_id, assignee):
        raise Invalid("assignee", f"{assignee} is not a member of organisation {org_id}")
    detail = {"org_id": org_id, "org_name": org.name, "org_name_en": org.name_en,
              "assignee": assignee, "due_s": due_s}  # fmt: skip
    _move(db, row, Action.DISPATCH, actor, now, detail)
    row.org_id = org_id
    row.assignee = assignee
    row.dispatched_at = now
    row.accepted_at = None
    if due_s is not None:
        row.due_at = now + timedelta(seconds=due_s)
        row.deadline_missed_at = None
    db.flush()
    return _out(db, row, now)


@dataclass(frozen=True, slots=True)
class ActionArgs:
    note: str | None = None
    rating: int | None = None
    comment: str | None = None
    reason: str | None = None
    override_reason: str | None = None
    close_override_after: timedelta = CLOSE_OVERRIDE_AFTER


NO_ARGS = ActionArgs()


def _close(db: Session, row: Incident, actor: str, now: datetime, args: ActionArgs) -> None:
    detail: dict[str, Any] = {}
    if State(row.state) is State.RESOLVED and row.confirm_required and row.confirmed_at is None:
        waited = now - (row.resolved_at or now)
        after = _span(args.close_override_after)
        if args.override_reason is None:
            raise Refused(
                f"incident {row.id}: the reporting resident has not confirmed the result yet; "
                f"a manager may close with override_reason {after} after resolution",
                conflict=True,
            )
        if waited < args.close_override_after:
            ago = _span(timedelta(seconds=int(waited.total_seconds()) // 60 * 60))
            raise Refused(
                f"incident {row.id}: override allowed {after} after resolution "
                f"(resolved {ago} ago)",
                conflict=True,
            )
        detail["override_reason"] = args.override_reason
    _move(db, row, Action.CLOSE, actor, now, detail)
    row.closed_at = now


def act(
    db: Session,
    incident_id: int,
    action: Action,
    *,
    actor: str,
    args: ActionArgs = NO_ARGS,
    now: datetime | None = None,
) -> IncidentOut:
    """accept, arrive, resolve, confirm, reopen, close, cancel or comment.

    State rules only (:mod:`cloud.governance.states`); who may do it is checked by the caller
    (:mod:`cloud.governance.access`), except that confirming is the reporter's alone.
    """
    now = _now(now)
    row = get_row(db, incident_id)
    if action is Action.ACCEPT:
        _move(db, row, action, actor, now)
        row.accepted_at = now
        if row.assignee is None:
            row.assignee = actor
    elif action is Action.ARRIVE:
        _move(db, row, action, actor, now, {"note": args.note} if args.note else None)
        row.arrived_at = row.arrived_at or now
    elif action is Action.RESOLVE:
        if not (args.note or "").strip():
            raise Invalid("note", "a disposal note is required to resolve")
        _move(db, row, action, actor, now, {"note": args.note})
        row.resolved_at = now
        row.disposal_note = args.note
    elif action is Action.CONFIRM:
        if row.reporter != actor:
            raise Refused(f"incident {row.id}: only its reporter may confirm it")
        if args.rating is None:
            raise Invalid("rating", "a rating 1..5 is required")
        _move(db, row, action, actor, now, {"rating": args.rating, "comment": args.comment})
        row.rating = args.rating
        row.resident_comment = args.comment
        row.confirmed_at = now
    elif action is Action.REOPEN:
        _move(db, row, action, actor, now, {"reason": args.reason})
        row.resolved_at = None
        row.confirmed_at = None
        row.rating = None
    elif action is Action.CLOSE:
        _close(db, row, actor, now, args)
    elif action is Action.CANCEL:
        _move(db, row, action, actor, now, {"reason": args.reason})
        row.cancelled_at = now
    elif action is Action.COMMENT:
        _move(db, row, action, actor, now, {"text": args.comment})
    else:
        raise ValueError(f"act() does not do {action.value}: use its own function")
    db.flush()
    return _out(db, row, now)


def add_photo(
    db: Session,
    incident_id: int,
    *,
    actor: str,
    photo_b64: str,
    photo_type: str | None,
    now: datetime | None = None,
) -> int:
    """Check (magic bytes, size) and store a photo; returns its id."""
    now = _now(now)
    row = get_row(db, incident_id)
    data, content_type = photos.decode(photo_b64, photo_type)
    next_state(row.id, State(row.state), Action.PHOTO)
    pic = IncidentPhoto(
        incident_id=row.id, uploaded_by=actor, ts=now, content_type=content_type, data=data
    )
    db.add(pic)
    db.flush()
    record(db, row.id, actor, "photo", now, {"photo_id": pic.id, "bytes": len(data)})
    return pic.id


def photo(db: Session, incident_id: int, photo_id: int) -> IncidentPhoto:
    pic = db.get(IncidentPhoto, photo_id)
    if pic is None or pic.incident_id != incident_id:
        raise NotFound("photo", photo_id)
    return pic


@dataclass(frozen=True, slots=True)
class IncidentFilter:
    state: tuple[State, ...] = ()
    site: str | None = None
    building: str | None = None
    category: str | None = None
    reporter: str | None = None
    drill: bool | None = None
    visible_orgs: tuple[int, ...] | None = None
    """Only incidents dispatched or whistled to these orgs (or assigned to ``worker``)."""
    worker: str | None = None
    limit: int = 200
    offset: int = 0


def list_incidents(
    db: Session, flt: IncidentFilter, *, now: datetime | None = None
) -> list[IncidentOut]:
    from cloud.governance.tables import Whistle

    now = _now(now)
    query = select(Incident).order_by(Incident.id.desc()).limit(flt.limit).offset(flt.offset)
    if flt.state:
        query = query.where(Incident.state.in_([s.value for s in flt.state]))
    for column, value in ((Incident.site, flt.site), (Incident.building, flt.building),
                          (Incident.category, flt.category), (Incident.reporter, flt.reporter),
                          (Incident.drill, flt.drill)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    if flt.visible_orgs is not None:
        orgs = list(flt.visible_orgs)
        whistled = select(Whistle.incident_id).where(Whistle.org_id.in_(orgs))
        query = query.where(
            Incident.org_id.in_(orgs)
            | Incident.id.in_(whistled)
            | (Incident.assignee == (flt.worker or ""))
        )
    return [_out(db, row, now) for row in db.scalars(query)]

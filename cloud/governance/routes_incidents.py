"""Routes: residents' reports, incidents, their actions and photos."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from cloud.api.params import Offset, RowId
from cloud.auth import audit
from cloud.auth.deps import DbSession, Principal, Role
from cloud.governance import access, catalogue, incidents
from cloud.governance.errors import Invalid
from cloud.governance.incidents import ActionArgs, IncidentFilter
from cloud.governance.models import (
    CloseIn,
    CommentIn,
    ConfirmIn,
    DispatchIn,
    IncidentDetail,
    IncidentIn,
    IncidentOut,
    NoteIn,
    PhotoIn,
    ReasonIn,
    ReportIn,
    ResolveIn,
)
from cloud.governance.states import Action, State
from cloud.governance.web import (
    AnyUser,
    Manager,
    Now,
    OverrideAfter,
    Participant,
    Reporter,
    Resident,
    ResidentOrManager,
    Worker,
    http_errors,
)

router = APIRouter(prefix="/api/gov", tags=["governance"])


def _visible(db: Session, incident_id: int, who: Principal) -> None:
    access.check_visible(db, incidents.get_row(db, incident_id), who)


@router.post("/reports", status_code=201, summary="A resident's report or service request")
def report(body: ReportIn, who: Reporter, db: DbSession, now: Now) -> IncidentDetail:
    with http_errors(db):
        item = catalogue.item_for(db, body.category)
        incident_id = incidents.open_incident(
            db,
            site=body.site,
            title=f"{item.name_zh} · {body.location}"[:200],
            category=body.category,
            source="report",
            actor=who.username,
            reporter=who.username,
            building=body.building,
            zone=body.zone,
            location=body.location,
            description=body.description,
            phase=item.phase,
            confirm_required=who.role is Role.RESIDENT,
            now=now,
        )
        if body.photo_b64 is not None:
            incidents.add_photo(db, incident_id, actor=who.username, photo_b64=body.photo_b64,
                                photo_type=body.photo_type, now=now)  # fmt: skip
        elif body.photo_type is not None:
            raise Invalid("photo_b64", "photo_type given without a photo")
        db.commit()
        return incidents.detail(db, incident_id, now=now)


@router.get("/incidents", summary="Incidents, newest first (residents: their own)")
def list_incidents(
    who: AnyUser,
    db: DbSession,
    now: Now,
    state: Annotated[list[State] | None, Query()] = None,
    site: str | None = None,
    building: str | None = None,
    category: str | None = None,
    mine: bool = False,
    drill: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> list[IncidentOut]:
    own = who.role is Role.RESIDENT or mine
    flt = IncidentFilter(
        state=tuple(state or ()),
        site=site,
        building=building,
        category=category,
        reporter=who.username if own else None,
        drill=drill,
        visible_orgs=access.visible_orgs(db, who),
        worker=who.username,
        limit=limit,
        offset=offset,
    )
    return incidents.list_incidents(db, flt, now=now)


@router.post("/incidents", status_code=201, summary="Open an incident by hand")
def create_incident(body: IncidentIn, who: Manager, db: DbSession, now: Now) -> IncidentDetail:
    with http_errors(db):
        incident_id = incidents.open_incident(
            db,
            site=body.site,
            title=body.title,
            category=body.category,
            source="manual",
            actor=who.username,
            building=body.building,
            zone=body.zone,
            location=body.location,
            description=body.description,
            severity=body.severity.value,
            phase=body.phase,
            drill=body.drill,
            alert_ids=body.alert_ids,
            now=now,
        )
        db.commit()
        return incidents.detail(db, incident_id, now=now)


@router.get("/incidents/{incident_id}", summary="One incident: timeline, whistles, photos")
def get_incident(incident_id: RowId, who: AnyUser, db: DbSession, now: Now) -> IncidentDetail:
    with http_errors(db):
        _visible(db, incident_id, who)
        return incidents.detail(db, incident_id, now=now)


@router.get(
    "/incidents/{incident_id}/photos/{photo_id}",
    summary="A photo's bytes",
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}, "image/png": {}}}},
)
def get_photo(incident_id: RowId, photo_id: RowId, who: AnyUser, db: DbSession) -> Response:
    with http_errors(db):
        _visible(db, incident_id, who)
        pic = incidents.photo(db, incident_id, photo_id)
    return Response(pic.data, media_type=pic.content_type,
                    headers={"Cache-Control": "private, max-age=3600"})  # fmt: skip


def _done(db: Session, incident_id: int, now: Now) -> IncidentDetail:
    db.commit()
    return incidents.detail(db, incident_id, now=now)


@router.post("/incidents/{incident_id}/dispatch", summary="Dispatch to an organisation")
def dispatch(
    incident_id: RowId, body: DispatchIn, who: Manager, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        out = incidents.dispatch(db, incident_id, org_id=body.org_id, actor=who.username,
                                 assignee=body.assignee, due_s=body.due_s, now=now)  # fmt: skip
        audit.record(db, who, "gov.incident.dispatch", f"incident:{incident_id}",
                     {"org_id": body.org_id, "assignee": body.assignee,
                      "due_at": out.due_at.isoformat() if out.due_at else None})  # fmt: skip
        return _done(db, incident_id, now)


def _work(
    db: Session, incident_id: int, who: Principal, action: Action, now: Now,
    args: ActionArgs = incidents.NO_ARGS,
) -> IncidentDetail:  # fmt: skip
    access.check_worker(db, incidents.get_row(db, incident_id), who)
    incidents.act(db, incident_id, action, actor=who.username, args=args, now=now)
    return _done(db, incident_id, now)


@router.post("/incidents/{incident_id}/accept", summary="Accept the work order")
def accept(incident_id: RowId, who: Worker, db: DbSession, now: Now) -> IncidentDetail:
    with http_errors(db):
        return _work(db, incident_id, who, Action.ACCEPT, now)


@router.post("/incidents/{incident_id}/arrive", summary="Record arrival on site")
def arrive(
    incident_id: RowId, who: Worker, db: DbSession, now: Now, body: NoteIn | None = None
) -> IncidentDetail:
    with http_errors(db):
        args = ActionArgs(note=None if body is None else body.note)
        return _work(db, incident_id, who, Action.ARRIVE, now, args)


@router.post("/incidents/{incident_id}/resolve", summary="Resolve, with a disposal note")
def resolve(
    incident_id: RowId, body: ResolveIn, who: Worker, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        audit.record(db, who, "gov.incident.resolve", f"incident:{incident_id}",
                     {"note": body.note})  # fmt: skip
        return _work(db, incident_id, who, Action.RESOLVE, now, ActionArgs(note=body.note))


@router.post("/incidents/{incident_id}/confirm", summary="The reporting resident confirms")
def confirm(
    incident_id: RowId, body: ConfirmIn, who: Resident, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        row = incidents.get_row(db, incident_id)
        access.check_reporter_or_manager(db, row, who)
        args = ActionArgs(rating=body.rating, comment=body.comment)
        incidents.act(db, incident_id, Action.CONFIRM, actor=who.username, args=args, now=now)
        return _done(db, incident_id, now)


@router.post("/incidents/{incident_id}/reopen", summary="Reopen a resolved incident")
def reopen(
    incident_id: RowId, body: ReasonIn, who: ResidentOrManager, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        access.check_reporter_or_manager(db, incidents.get_row(db, incident_id), who)
        incidents.act(db, incident_id, Action.REOPEN, actor=who.username,
                      args=ActionArgs(reason=body.reason), now=now)  # fmt: skip
        return _done(db, incident_id, now)


@router.post("/incidents/{incident_id}/close", summary="Close (resolved, and confirmed)")
def close(
    incident_id: RowId, who: Manager, db: DbSession, now: Now, wait: OverrideAfter,
    body: CloseIn | None = None,
) -> IncidentDetail:  # fmt: skip
    with http_errors(db):
        override = None if body is None else body.override_reason
        args = ActionArgs(override_reason=override, close_override_after=wait)
        incidents.act(db, incident_id, Action.CLOSE, actor=who.username, args=args, now=now)
        audit.record(db, who, "gov.incident.close", f"incident:{incident_id}",
                     {"override_reason": override})  # fmt: skip
        return _done(db, incident_id, now)


@router.post("/incidents/{incident_id}/cancel", summary="Cancel")
def cancel(
    incident_id: RowId, body: ReasonIn, who: Manager, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        incidents.act(db, incident_id, Action.CANCEL, actor=who.username,
                      args=ActionArgs(reason=body.reason), now=now)  # fmt: skip
        audit.record(db, who, "gov.incident.cancel", f"incident:{incident_id}",
                     {"reason": body.reason})  # fmt: skip
        return _done(db, incident_id, now)


@router.post("/incidents/{incident_id}/comment", summary="Add a comment to the timeline")
def comment(
    incident_id: RowId, body: CommentIn, who: Participant, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        _visible(db, incident_id, who)
        incidents.act(db, incident_id, Action.COMMENT, actor=who.username,
                      args=ActionArgs(comment=body.text), now=now)  # fmt: skip
        return _done(db, incident_id, now)


@router.post("/incidents/{incident_id}/photo", status_code=201, summary="Add a photo")
def add_photo(
    incident_id: RowId, body: PhotoIn, who: Participant, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        _visible(db, incident_id, who)
        incidents.add_photo(db, incident_id, actor=who.username, photo_b64=body.photo_b64,
                            photo_type=body.photo_type, now=now)  # fmt: skip
        return _done(db, incident_id, now)

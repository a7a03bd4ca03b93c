"""Alerts: list/filter, detail, timeline, the workflow actions, comments, escalation, CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud.alerts import service
from cloud.alerts.states import IllegalTransition, Severity, Status, Transition
from cloud.alerts.views import AlertEventOut, AlertOut, live_event
from cloud.api.params import Offset, RowId
from cloud.api.services import Svc
from cloud.auth import audit
from cloud.auth.deps import STAFF, DbSession, Principal, Role, require_roles
from cloud.storage.tables import Reading, Series

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

Reader = Annotated[Principal, Depends(require_roles())]
Worker = Annotated[Principal, Depends(require_roles(*STAFF))]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
Escalator = Annotated[Principal, Depends(require_roles(Role.MANAGER, Role.GUARD))]


class ActionIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    note: Annotated[str, Field(max_length=2000)] | None = None


def _note(body: ActionIn | None) -> str | None:
    return None if body is None else body.note


class AssignIn(ActionIn):
    assignee: Annotated[str, Field(min_length=1, max_length=64)]


class CommentIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=2000)]


class AlertDetail(BaseModel):
    model_config = ConfigDict(frozen=True)

    alert: AlertOut
    timeline: list[AlertEventOut]


def _filter(
    site: str | None,
    status_: list[Status] | None,
    severity: list[Severity] | None,
    rule_id: str | None,
    subject: str | None,
    active: bool | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> service.AlertFilter:
    return service.AlertFilter(
        site=site,
        status=tuple(status_ or ()),
        severity=tuple(severity or ()),
        rule_id=rule_id,
        subject=subject,
        active=active,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )


@router.get("", summary="List alerts, newest first")
def list_alerts(
    who: Reader,
    db: DbSession,
    site: str | None = None,
    status_: Annotated[list[Status] | None, Query(alias="status")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    rule_id: str | None = None,
    subject: str | None = None,
    active: bool | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[AlertOut]:
    flt = _filter(site, status_, severity, rule_id, subject, active, since, until, limit, offset)
    return service.list_alerts(db, flt)


CSV_COLUMNS = (
    "id", "site", "rule_id", "subject", "severity", "status", "title_en", "title_zh", "count",
    "cleared", "raised_at", "acknowledged_at", "acknowledged_by", "assignee", "resolved_at",
    "closed_at", "escalation_tier",
)  # fmt: skip


@router.get("/export.csv", summary="Alerts as CSV (same filters as the list)")
def export_csv(
    who: Worker,
    db: DbSession,
    site: str | None = None,
    status_: Annotated[list[Status] | None, Query(alias="status")] = None,
    severity: Annotated[list[Severity] | None, Query()] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> StreamingResponse:
    flt = _filter(site, status_, severity, None, None, None, since, until, limit, 0)
    rows = service.list_alerts(db, flt)

    def lines() -> Iterator[str]:
        buf = io.StringIO()
        writer = csv.writer(buf)
        buf.write("\ufeff")  # so spreadsheet programs read the Chinese titles as UTF-8
        writer.writerow(CSV_COLUMNS)
        for alert in rows:
            data = alert.model_dump(mode="json")
            writer.writerow(["" if data[c] is None else data[c] for c in CSV_COLUMNS])
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
        yield buf.getvalue()

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="linli-alerts.csv"'},
    )


def _get(db: DbSession, alert_id: int) -> AlertOut:
    try:
        return service.get_alert(db, alert_id)
    except service.AlertNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@router.get("/{alert_id}", summary="One alert with its timeline")
def get_alert(alert_id: RowId, who: Reader, db: DbSession) -> AlertDetail:
    alert = _get(db, alert_id)
    return AlertDetail(alert=alert, timeline=service.timeline(db, alert_id))


@router.get("/{alert_id}/timeline", summary="Every transition, comment and notification")
def get_timeline(alert_id: RowId, who: Reader, db: DbSession) -> list[AlertEventOut]:
    _get(db, alert_id)
    return service.timeline(db, alert_id)


class EvidenceOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    recorded: list[dict[str, Any]] = Field(description="Kept with the alert when it was raised")
    around: list[dict[str, Any]] = Field(
        description="Stored readings of the trigger devices from a minute before to a minute after"
    )


@router.get("/{alert_id}/evidence", summary="Evidence, and the readings around the trigger")
def get_evidence(
    alert_id: RowId,
    who: Reader,
    db: DbSession,
    window_s: Annotated[float, Query(gt=0, le=3600)] = 60,
) -> EvidenceOut:
    alert = _get(db, alert_id)
    devices = {
        str(e["device"]) for e in alert.evidence if e.get("role") == "trigger" and "device" in e
    } or ({alert.device} if alert.device else set())
    window = timedelta(seconds=window_s)
    rows = db.execute(
        select(Series.device, Series.metric, Reading.value, Reading.ts)
        .join(Series, Series.id == Reading.series)
        .where(
            Series.site == alert.site,
            Series.device.in_(sorted(devices)),
            Reading.ts >= alert.first_seen - window,
            Reading.ts <= alert.first_seen + window,
        )
        .order_by(Reading.ts)
        .limit(1000)
    ).all()
    around = [{"device": d, "metric": m, "value": v, "ts": ts.isoformat()} for d, m, v, ts in rows]
    return EvidenceOut(recorded=alert.evidence, around=around)


def _act(
    svc: Svc,
    db: DbSession,
    alert_id: int,
    action: Transition,
    who: Principal,
    *,
    note: str | None = None,
    assignee: str | None = None,
) -> AlertOut:
    _get(db, alert_id)
    try:
        alert = service.transition(
            db, alert_id, action, who.username, datetime.now(UTC), note=note, assignee=assignee
        )
    except IllegalTransition as exc:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except ValueError as exc:
        db.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if action in (Transition.CLOSE, Transition.RESOLVE):
        audit.record(db, who, f"alert.{action.value}", f"alert:{alert_id}", {"note": note or ""})
    db.commit()
    svc.hub.publish(live_event(alert, action.value))
    return alert


@router.post("/{alert_id}/ack", summary="Acknowledge (stops escalation)")
def acknowledge(
    alert_id: RowId, who: Worker, db: DbSession, svc: Svc, body: ActionIn | None = None
) -> AlertOut:
    return _act(svc, db, alert_id, Transition.ACKNOWLEDGE, who, note=_note(body))


@router.post("/{alert_id}/assign", summary="Assign to a person")
def assign(alert_id: RowId, body: AssignIn, who: Manager, db: DbSession, svc: Svc) -> AlertOut:
    return _act(svc, db, alert_id, Transition.ASSIGN, who, note=body.note, assignee=body.assignee)


@router.post("/{alert_id}/start", summary="Start work (assigns the caller if nobody is)")
def start(
    alert_id: RowId, who: Worker, db: DbSession, svc: Svc, body: ActionIn | None = None
) -> AlertOut:
    return _act(svc, db, alert_id, Transition.START, who, note=_note(body))


@router.post("/{alert_id}/resolve", summary="Resolve (a person's judgement, audited)")
def resolve(
    alert_id: RowId, who: Worker, db: DbSession, svc: Svc, body: ActionIn | None = None
) -> AlertOut:
    return _act(svc, db, alert_id, Transition.RESOLVE, who, note=_note(body))


@router.post("/{alert_id}/close", summary="Close a resolved alert (audited)")
def close(
    alert_id: RowId, who: Manager, db: DbSession, svc: Svc, body: ActionIn | None = None
) -> AlertOut:
    return _act(svc, db, alert_id, Transition.CLOSE, who, note=_note(body))


@router.post("/{alert_id}/comment", summary="Add a comment to the timeline")
def comment(alert_id: RowId, body: CommentIn, who: Worker, db: DbSession, svc: Svc) -> AlertOut:
    return _act(svc, db, alert_id, Transition.COMMENT, who, note=body.text)


@router.post("/{alert_id}/escalate", summary="Escalate now to the next tier")
def escalate(
    alert_id: RowId, who: Escalator, db: DbSession, svc: Svc, body: ActionIn | None = None
) -> AlertOut:
    _get(db, alert_id)
    try:
        esc = service.escalate(
            db,
            alert_id,
            who.username,
            datetime.now(UTC),
            svc.settings.escalation,
            note=_note(body),
        )
    except IllegalTransition as exc:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    audit.record(db, who, "alert.escalate", f"alert:{alert_id}", {"tier": esc.tier})
    db.commit()
    svc.escalator.announce(esc)
    return esc.alert

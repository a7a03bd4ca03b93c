"""Routes: blow the whistle, the board of who has reported, departments reporting in."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api.params import RowId
from cloud.auth import audit
from cloud.auth.deps import DbSession
from cloud.governance import access, incidents, whistles
from cloud.governance.models import IncidentDetail, StageReportIn, WhistleIn, WhistleOut
from cloud.governance.web import DepartmentOrManager, Manager, Now, Worker, http_errors

router = APIRouter(prefix="/api/gov", tags=["governance"])


@router.post("/incidents/{incident_id}/whistle", summary="Summon departments (吹哨)")
def blow(
    incident_id: RowId, body: WhistleIn, who: Manager, db: DbSession, now: Now
) -> IncidentDetail:
    with http_errors(db):
        made = whistles.blow(db, incident_id, body.departments, reason=body.reason,
                             actor=who.username, now=now)  # fmt: skip
        audit.record(db, who, "gov.whistle", f"incident:{incident_id}",
                     {"departments": body.departments, "whistles": made,
                      "reason": body.reason})  # fmt: skip
        db.commit()
        return incidents.detail(db, incident_id, now=now)


@router.get("/whistles", summary="The board: every summoned department and what it reported")
def board(
    who: Worker, db: DbSession, now: Now, open: bool = False, site: str | None = None
) -> list[WhistleOut]:
    mine = None if access.is_manager(who) else access.visible_orgs(db, who)
    return whistles.list_whistles(db, now, open_only=open, site=site, org_ids=mine)


@router.post("/whistles/{whistle_id}/report", summary="A department reports a stage (报到)")
def report(
    whistle_id: RowId, body: StageReportIn, who: DepartmentOrManager, db: DbSession, now: Now
) -> WhistleOut:
    with http_errors(db):
        row = whistles.get_whistle(db, whistle_id)
        access.check_department(db, row, who)
        whistles.report(db, whistle_id, body.stage, actor=who.username, now=now, note=body.note)
        db.commit()
        return whistles.board_row(db, row, now)

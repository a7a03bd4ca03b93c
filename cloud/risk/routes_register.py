"""Routes: the risk register and its watch view, lifecycle phases, residents, statistics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from cloud.api.params import RowId
from cloud.api.services import Svc
from cloud.auth import audit
from cloud.auth.deps import STAFF, DbSession, Principal, Role, require_roles
from cloud.governance.models import Phase
from cloud.governance.tables import Incident
from cloud.governance.web import Manager, Now, Worker, http_errors
from cloud.risk import register, residents
from cloud.risk.levels import PHASES, rule_phase
from cloud.risk.register import RiskIn, RiskOut, RiskPatch, RiskStatus, RiskWatch
from cloud.risk.residents import ResidentIn, ResidentOut, ResidentPatch
from cloud.risk.stats import Stats, stats
from cloud.risk.tables import Risk

router = APIRouter(prefix="/api/gov", tags=["risk"])
Reader = Annotated[Principal, Depends(require_roles(*STAFF, Role.VIEWER))]
"""Staff and the committee's wall screen: the register, phases, drills, reports, statistics."""


@router.get("/risks", summary="The risk register (filter by site, building, status, phase)")
def list_risks(
    who: Reader,
    db: DbSession,
    site: str | None = None,
    building: str | None = None,
    status: RiskStatus | None = None,
    phase: Phase | None = None,
) -> list[RiskOut]:
    return register.list_risks(db, site=site, building=building, status=status, phase=phase)


@router.post("/risks", status_code=201, summary="Add a risk (device and rule links checked)")
def create_risk(body: RiskIn, who: Manager, db: DbSession, svc: Svc, now: Now) -> RiskOut:
    with http_errors(db):
        risk = register.create_risk(db, body, svc.ruleset, actor=who.username, now=now)
        audit.record(db, who, "gov.risk.create", f"risk:{risk.id}", {"title": risk.title_en})
        db.commit()
    return risk


@router.get("/risks/{risk_id}", summary="One risk")
def get_risk(risk_id: RowId, who: Reader, db: DbSession) -> RiskOut:
    with http_errors(db):
        return RiskOut.of(register.get_row(db, risk_id))


@router.patch("/risks/{risk_id}", summary="Change a risk (links re-checked)")
def patch_risk(
    risk_id: RowId, body: RiskPatch, who: Manager, db: DbSession, svc: Svc, now: Now
) -> RiskOut:
    with http_errors(db):
        risk = register.patch_risk(db, risk_id, body, svc.ruleset, actor=who.username, now=now)
        audit.record(db, who, "gov.risk.update", f"risk:{risk_id}",
                     body.model_dump(mode="json", exclude_unset=True))  # fmt: skip
        db.commit()
    return risk


@router.get("/risks/{risk_id}/watch", summary="Is the risk watched: devices, rules, alerts")
def watch_risk(risk_id: RowId, who: Reader, db: DbSession, svc: Svc, now: Now) -> RiskWatch:
    with http_errors(db):
        return register.watch(db, risk_id, svc.ruleset, now)


class PhaseCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    risks: int
    rules: int
    incidents: int


class PhasesOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    phases: dict[Phase, PhaseCount]
    rules: dict[str, Phase]
    """Each loaded rule's phase."""


@router.get("/phases", summary="Risks, rules and incidents per lifecycle phase")
def phases(who: Reader, db: DbSession, svc: Svc, site: str | None = None) -> PhasesOut:
    risk_q = select(Risk.phase, func.count()).group_by(Risk.phase)
    incident_q = select(Incident.phase, func.count()).group_by(Incident.phase)
    if site is not None:
        risk_q = risk_q.where(Risk.site == site)
        incident_q = incident_q.where(Incident.site == site)
    risks: dict[str, int] = {p: n for p, n in db.execute(risk_q)}
    incidents: dict[str, int] = {p: n for p, n in db.execute(incident_q)}
    rules = {r.id: rule_phase(r) for r in svc.ruleset.rules}
    counts = {
        p: PhaseCount(
            risks=risks.get(p, 0),
            rules=sum(1 for v in rules.values() if v == p),
            incidents=incidents.get(p, 0),
        )
        for p in PHASES
    }
    return PhasesOut(phases=counts, rules=rules)


@router.get("/residents", summary="Residents (personal data: staff only)")
def list_residents(
    who: Worker,
    db: DbSession,
    site: str | None = None,
    building: str | None = None,
    living_alone: bool | None = None,
) -> list[ResidentOut]:
    return residents.list_residents(db, site=site, building=building, living_alone=living_alone)


@router.post("/residents", status_code=201, summary="Register a resident")
def create_resident(body: ResidentIn, who: Manager, db: DbSession, now: Now) -> ResidentOut:
    with http_errors(db):
        out = residents.create_resident(db, body, now=now)
        audit.record(db, who, "gov.resident.create", f"resident:{out.id}", {"site": out.site})
        db.commit()
    return out


@router.patch("/residents/{resident_id}", summary="Change a resident's record")
def patch_resident(
    resident_id: RowId, body: ResidentPatch, who: Manager, db: DbSession, now: Now
) -> ResidentOut:
    with http_errors(db):
        out = residents.patch_resident(db, resident_id, body, now=now)
        changed = sorted(body.model_dump(exclude_unset=True))  # names only: no personal data
        audit.record(db, who, "gov.resident.update", f"resident:{resident_id}",
                     {"fields": changed})  # fmt: skip
        db.commit()
    return out


@router.delete("/residents/{resident_id}", status_code=204, summary="Forget a resident")
def delete_resident(resident_id: RowId, who: Manager, db: DbSession) -> None:
    with http_errors(db):
        residents.delete_resident(db, resident_id)
        audit.record(db, who, "gov.resident.delete", f"resident:{resident_id}")
        db.commit()


@router.get("/stats", summary="Incidents by category, building, month; SLA; response times")
def get_stats(
    who: Reader,
    db: DbSession,
    now: Now,
    site: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    drill: Annotated[bool, Query(description="Include drill incidents")] = False,
) -> Stats:
    since, until = (t if t is None or t.tzinfo else t.replace(tzinfo=UTC) for t in (since, until))
    return stats(db, now, site=site, since=since, until=until, include_drills=drill)

"""Visitor passes: issue (with a QR code), list, revoke, check; their uses. Issuing and
revoking are audited, and announced to the gate sync (``cloud.gate.changes``), which sends the
site's gateways the new set at once.

The QR code carries ``LINLI-PASS:<code>``; a gate reader hands the code to the door policy,
which checks the time window, the doors and the remaining uses. Uses come back from the
gateways' access events (``cloud.gate.uses``): ``uses``, ``remaining`` and ``state`` (``active``
or why the pass no longer opens: ``pass_revoked``, ``pass_expired``, ``pass_not_yet_valid``,
``pass_used_up``).
"""

from __future__ import annotations

import io
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

import segno
from fastapi import APIRouter, Depends, HTTPException, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from cloud.api.params import RowId
from cloud.auth import audit
from cloud.auth.deps import DbSession, Principal, Role, require_roles
from cloud.gate import changes, uses
from dashboards.tables import VisitorPass
from protocols.ids import Ident

router = APIRouter(tags=["visitor passes"])

Issuer = Annotated[Principal, Depends(require_roles(Role.GUARD, Role.MANAGER, Role.RESIDENT))]
GateStaff = Annotated[Principal, Depends(require_roles(Role.GUARD, Role.MANAGER))]
QR_PREFIX = "LINLI-PASS:"
MAX_VALIDITY = timedelta(days=30)


class PassIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    visitor_name: Annotated[str, Field(min_length=1, max_length=64)]
    host: Annotated[str, Field(max_length=64)] | None = Field(None, description="Unit or person")
    site: Ident | None = None
    doors: tuple[Ident, ...] = Field((), max_length=32, description="Empty: every gate door")
    valid_from: AwareDatetime | None = Field(None, description="Default: now")
    valid_until: AwareDatetime
    max_uses: int = Field(1, ge=1, le=100)

    @model_validator(mode="after")
    def _window(self) -> PassIn:
        start = self.valid_from or datetime.now(UTC)
        if self.valid_until <= start:
            raise ValueError("valid_until must be after valid_from")
        if self.valid_until - start > MAX_VALIDITY:
            raise ValueError("a visitor pass lasts at most 30 days")
        return self


class PassOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    code: str
    qr_text: str
    visitor_name: str
    host: str | None
    site: str | None
    doors: list[str]
    valid_from: datetime
    valid_until: datetime
    max_uses: int
    uses: int
    remaining: int
    state: str = Field(description="active, pass_revoked, pass_expired, … (cloud.gate.uses)")
    created_by: str
    created_at: datetime
    revoked: bool

    @classmethod
    def of(cls, row: VisitorPass) -> PassOut:
        return cls(
            id=row.id,
            code=row.code,
            qr_text=QR_PREFIX + row.code,
            visitor_name=row.visitor_name,
            host=row.host,
            site=row.site,
            doors=list(row.doors),
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            max_uses=row.max_uses,
            uses=row.uses,
            remaining=uses.remaining(row),
            state=uses.pass_state(row, datetime.now(UTC)),
            created_by=row.created_by,
            created_at=row.created_at,
            revoked=row.revoked_at is not None,
        )


@router.post("/api/visitor-passes", status_code=status.HTTP_201_CREATED)
def issue_pass(body: PassIn, who: Issuer, db: DbSession) -> PassOut:
    now = datetime.now(UTC)
    row = VisitorPass(
        code=secrets.token_urlsafe(12),
        site=body.site,
        visitor_name=body.visitor_name,
        host=body.host,
        doors=list(body.doors),
        valid_from=body.valid_from or now,
        valid_until=body.valid_until,
        max_uses=body.max_uses,
        uses=0,
        created_by=who.username,
        created_at=now,
        detail={},
    )
    db.add(row)
    db.flush()
    audit.record(
        db,
        who,
        "visitor_pass.issue",
        f"visitor_pass:{row.id}",
        {"visitor": body.visitor_name, "until": body.valid_until.isoformat(), "uses": row.max_uses},
    )
    changes.announce(db, row.site)
    db.commit()
    return PassOut.of(row)


@router.get("/api/visitor-passes")
def list_passes(who: GateStaff, db: DbSession, active: bool = True) -> list[PassOut]:
    query = select(VisitorPass).order_by(VisitorPass.id.desc()).limit(200)
    if active:
        query = query.where(
            VisitorPass.revoked_at.is_(None), VisitorPass.valid_until > datetime.now(UTC)
        )
    return [PassOut.of(r) for r in db.scalars(query)]


def _get(db: DbSession, pass_id: int) -> VisitorPass:
    row = db.get(VisitorPass, pass_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no visitor pass {pass_id}")
    return row


@router.get("/api/visitor-passes/{pass_id}/qr.svg", response_class=Response)
def pass_qr(pass_id: RowId, who: Issuer, db: DbSession) -> Response:
    """The pass as a QR code (SVG, made on the server with segno; the standard 4-module quiet
    zone, which scanners need)."""
    row = _get(db, pass_id)
    if who.role is Role.RESIDENT and row.created_by != who.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not your visitor pass")
    buffer = io.BytesIO()
    segno.make(QR_PREFIX + row.code, error="m").save(buffer, kind="svg", scale=8, border=4)
    return Response(
        buffer.getvalue(), media_type="image/svg+xml", headers={"Cache-Control": "no-store"}
    )


@router.post("/api/visitor-passes/{pass_id}/revoke")
def revoke_pass(pass_id: RowId, who: GateStaff, db: DbSession) -> PassOut:
    row = _get(db, pass_id)
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        audit.record(db, who, "visitor_pass.revoke", f"visitor_pass:{row.id}", {})
        changes.announce(db, row.site)
        db.commit()
    return PassOut.of(row)


class PassUseOut(BaseModel):
    gateway: str
    door: str
    method: str
    at: datetime


@router.get("/api/visitor-passes/{pass_id}/uses")
def pass_uses(pass_id: RowId, who: GateStaff, db: DbSession) -> list[PassUseOut]:
    """Each use the gateways reported, oldest first."""
    _get(db, pass_id)
    return [
        PassUseOut(gateway=u.gateway, door=u.door, method=u.method, at=u.at)
        for u in uses.uses_of(db, pass_id)
    ]


class PassCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: Annotated[str, Field(min_length=6, max_length=64 + len(QR_PREFIX))] = Field(
        description="The pass code, or the QR text LINLI-PASS:<code>"
    )
    door: Ident | None = None


@router.post("/api/visitor-passes/check", responses={404: {}, 409: {}})
def check_pass(body: PassCheck, who: GateStaff, db: DbSession) -> PassOut:
    """Whether a presented pass opens now (a guard's check; the door decides by itself): the
    pass if so; 409 with the reason (``pass_used_up``, ``pass_expired``, …) if not; 404
    ``unknown_credential`` for an unknown code."""
    code = body.code.removeprefix(QR_PREFIX)
    row = db.scalars(select(VisitorPass).where(VisitorPass.code == code)).first()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, {"reason": "unknown_credential"})
    state = uses.pass_state(row, datetime.now(UTC), body.door)
    if state != "active":
        detail = {"reason": state, "pass_id": row.id, "uses": row.uses, "max_uses": row.max_uses}
        raise HTTPException(status.HTTP_409_CONFLICT, detail)
    return PassOut.of(row)

"""Access events (the gate feed): decisions, unknown faces, forced/held doors, tailgating."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from cloud.auth.deps import STAFF, DbSession, Principal, require_roles
from cloud.storage.tables import AccessEventRow

router = APIRouter(prefix="/api/access-events", tags=["access"])
Reader = Annotated[Principal, Depends(require_roles(*STAFF))]


class AccessOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    msg_id: str
    site: str
    gateway: str
    door: str
    kind: str
    decision: str
    reason: str
    method: str
    camera: str | None
    person_id: str | None
    person_name: str | None
    distance: float | None
    liveness: float | None
    thumbnail_jpeg_b64: str | None
    attrs: dict[str, Any]
    ts: datetime
    historical: bool


def access_out(row: AccessEventRow, now: datetime) -> AccessOut:
    expired = row.thumbnail_expires_at is not None and row.thumbnail_expires_at <= now
    data = {name: getattr(row, name) for name in AccessOut.model_fields}
    if expired:
        data["thumbnail_jpeg_b64"] = None
    return AccessOut.model_validate(data)


@router.get("", summary="Access events, newest first")
def list_access_events(
    who: Reader,
    db: DbSession,
    site: str | None = None,
    door: str | None = None,
    kind: str | None = None,
    decision: str | None = None,
    since: datetime | None = None,
    thumbnails: bool = True,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AccessOut]:
    q = select(AccessEventRow).order_by(AccessEventRow.ts.desc(), AccessEventRow.id.desc())
    if site:
        q = q.where(AccessEventRow.site == site)
    if door:
        q = q.where(AccessEventRow.door == door)
    if kind:
        q = q.where(AccessEventRow.kind == kind)
    if decision:
        q = q.where(AccessEventRow.decision == decision)
    if since:
        q = q.where(AccessEventRow.ts >= since)
    now = datetime.now(UTC)
    out = [access_out(r, now) for r in db.scalars(q.limit(limit))]
    if not thumbnails:
        out = [o.model_copy(update={"thumbnail_jpeg_b64": None}) for o in out]
    return out

"""In-app notifications for the signed-in user's role, and those addressed to them by name."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select

from cloud.alerts.tables import Notification
from cloud.api.params import Offset
from cloud.auth.deps import DbSession, Principal, Role, require_roles

router = APIRouter(prefix="/api/notifications", tags=["notifications"])
AnyUser = Annotated[Principal, Depends(require_roles())]


class NotificationOut(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    ts: datetime
    alert_id: int | None
    role: str
    username: str | None = None
    severity: str
    title_en: str
    title_zh: str
    reason: str


@router.get("", summary="Notifications for my role, newest first")
def my_notifications(
    who: AnyUser,
    db: DbSession,
    since_id: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[NotificationOut]:
    q = select(Notification).where(Notification.id > since_id)
    if who.role is not Role.ADMIN:
        q = q.where(or_(Notification.role == who.role.value, Notification.username == who.username))
    rows = db.scalars(q.order_by(Notification.id.desc()).limit(limit))
    return [NotificationOut.model_validate(r) for r in rows]

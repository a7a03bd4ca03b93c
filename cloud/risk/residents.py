"""The residents register: who lives where, who lives alone, which devices show they are well.

Personal data (name, phone): only staff read or write it (see docs/governance.md, Privacy).
Activity devices must be registered for the resident's site.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.governance.errors import NotFound
from cloud.governance.models import Phone
from cloud.risk.register import changes_of, check_devices
from cloud.risk.tables import Resident
from protocols.ids import Ident

Name = Annotated[str, Field(min_length=1, max_length=100)]
WelfareHours = Annotated[float, Field(gt=0, le=24 * 30)]
DEFAULT_WELFARE_AFTER_H = 24.0


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResidentIn(_In):
    site: Ident
    building: Ident
    unit: Ident
    name: Name
    phone: Phone | None = None
    living_alone: bool = False
    activity_devices: list[Ident] = Field(default_factory=list, max_length=20)
    welfare_after_h: WelfareHours = DEFAULT_WELFARE_AFTER_H


class ResidentPatch(_In):
    building: Ident | None = None
    unit: Ident | None = None
    name: Name | None = None
    phone: Phone | None = None
    living_alone: bool | None = None
    activity_devices: list[Ident] | None = Field(None, max_length=20)
    welfare_after_h: WelfareHours | None = None


class ResidentOut(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    site: str
    building: str
    unit: str
    name: str
    phone: str | None
    living_alone: bool
    activity_devices: list[str]
    welfare_after_h: float
    created_at: datetime
    updated_at: datetime


def create_resident(db: Session, body: ResidentIn, *, now: datetime) -> ResidentOut:
    check_devices(db, body.site, body.activity_devices, "activity_devices")
    row = Resident(
        **body.model_dump(exclude={"activity_devices"}),
        activity_devices=list(dict.fromkeys(body.activity_devices)),
        created_at=now,
        updated_at=now,
    )
    db.add(row)
    db.flush()
    return ResidentOut.model_validate(row)


def get_row(db: Session, resident_id: int) -> Resident:
    row = db.get(Resident, resident_id)
    if row is None:
        raise NotFound("resident", resident_id)
    return row


def patch_resident(
    db: Session, resident_id: int, body: ResidentPatch, *, now: datetime
) -> ResidentOut:
    row = get_row(db, resident_id)
    changes = changes_of(body, nullable=("phone",))
    if body.activity_devices is not None:
        check_devices(db, row.site, body.activity_devices, "activity_devices")
        changes["activity_devices"] = list(dict.fromkeys(body.activity_devices))
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = now
    db.flush()
    return ResidentOut.model_validate(row)


def delete_resident(db: Session, resident_id: int) -> None:
    """Forget a resident (moved out, withdrew consent); their welfare-check links go too."""
    db.delete(get_row(db, resident_id))
    db.flush()


def list_residents(
    db: Session,
    *,
    site: str | None = None,
    building: str | None = None,
    living_alone: bool | None = None,
) -> list[ResidentOut]:
    query = select(Resident).order_by(Resident.site, Resident.building, Resident.unit, Resident.id)
    for column, value in ((Resident.site, site), (Resident.building, building),
                          (Resident.living_alone, living_alone)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    return [ResidentOut.model_validate(r) for r in db.scalars(query)]

"""Sites, devices and gateways (read), and approval of pending gateways/devices (managers)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from cloud.api.params import Offset
from cloud.api.services import Svc
from cloud.auth import audit
from cloud.auth.deps import DbSession, Principal, Role, require_roles
from cloud.registry.service import RegistryError
from cloud.registry.tables import Approval, Building, Device, Gateway, Site, Zone
from cloud.storage.tables import GatewaySession, SequenceGap
from protocols.kinds import DeviceKind

router = APIRouter(prefix="/api", tags=["registry"])
Reader = Annotated[Principal, Depends(require_roles())]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]


class Out(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class SiteOut(Out):
    id: str
    name: str | None
    auto_approve: bool


class PlaceOut(Out):
    site: str
    id: str
    name: str | None


class ZoneOut(PlaceOut):
    building: str | None
    floor: str | None


class SiteDetail(Out):
    site: SiteOut
    buildings: list[PlaceOut]
    zones: list[ZoneOut]
    gateways: int
    devices: int


class DeviceOut(Out):
    site: str
    id: str
    gateway: str | None
    kind: str | None
    name: str | None
    building: str | None
    floor: str | None
    unit: str | None
    zone: str | None
    approval: str
    first_seen: datetime | None
    last_seen: datetime | None
    online: bool | None
    attrs: dict[str, Any]


class GatewayOut(Out):
    site: str
    id: str
    name: str | None
    building: str | None
    approval: str
    online: bool
    boot_id: str | None
    agent_version: str | None
    state_reason: str | None
    state_at: datetime | None
    first_seen: datetime | None


class GapOut(Out):
    site: str
    gateway: str
    boot_id: str
    first_seq: int
    last_seq: int
    missing: int
    detected_at: datetime
    closed_at: datetime | None


class GatewayHealth(Out):
    gateway: GatewayOut
    devices: int
    messages_this_boot: int | None
    last_message: datetime | None
    open_gaps: int
    missing_messages: int


class ApprovalIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    approval: Approval
    kind: DeviceKind | None = None


class PendingOut(Out):
    gateways: list[GatewayOut]
    devices: list[DeviceOut]


@router.get("/sites", summary="Sites")
def list_sites(who: Reader, db: DbSession) -> list[SiteOut]:
    return [SiteOut.model_validate(s) for s in db.scalars(select(Site).order_by(Site.id))]


@router.get("/sites/{site}", summary="A site with its buildings and zones")
def get_site(site: str, who: Reader, db: DbSession) -> SiteDetail:
    row = db.get(Site, site)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no site {site!r}")
    return SiteDetail(
        site=SiteOut.model_validate(row),
        buildings=[
            PlaceOut.model_validate(b)
            for b in db.scalars(select(Building).where(Building.site == site))
        ],
        zones=[
            ZoneOut.model_validate(z) for z in db.scalars(select(Zone).where(Zone.site == site))
        ],
        gateways=db.scalar(select(func.count()).where(Gateway.site == site)) or 0,
        devices=db.scalar(select(func.count()).where(Device.site == site)) or 0,
    )


@router.get("/devices", summary="Devices (filter by site, gateway, kind, zone, approval)")
def list_devices(
    who: Reader,
    db: DbSession,
    site: str | None = None,
    gateway: str | None = None,
    kind: DeviceKind | None = None,
    zone: str | None = None,
    approval: Approval | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Offset = 0,
) -> list[DeviceOut]:
    q = select(Device).order_by(Device.site, Device.id)
    if site:
        q = q.where(Device.site == site)
    if gateway:
        q = q.where(Device.gateway == gateway)
    if kind:
        q = q.where(Device.kind == kind.value)
    if zone:
        q = q.where(Device.zone == zone)
    if approval:
        q = q.where(Device.approval == approval.value)
    return [DeviceOut.model_validate(d) for d in db.scalars(q.limit(limit).offset(offset))]


@router.get("/devices/{site}/{device}", summary="One device")
def get_device(site: str, device: str, who: Reader, db: DbSession) -> DeviceOut:
    row = db.get(Device, (site, device))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {site}/{device}")
    return DeviceOut.model_validate(row)


@router.get("/gateways", summary="Gateways with online state")
def list_gateways(who: Reader, db: DbSession, site: str | None = None) -> list[GatewayOut]:
    q = select(Gateway).order_by(Gateway.site, Gateway.id)
    if site:
        q = q.where(Gateway.site == site)
    return [GatewayOut.model_validate(g) for g in db.scalars(q)]


@router.get("/gateways/{site}/{gateway}/health", summary="Gateway health: online, gaps, traffic")
def gateway_health(site: str, gateway: str, who: Reader, db: DbSession) -> GatewayHealth:
    row = db.get(Gateway, (site, gateway))
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no gateway {site}/{gateway}")
    sess = db.scalars(
        select(GatewaySession)
        .where(GatewaySession.site == site, GatewaySession.gateway == gateway)
        .order_by(GatewaySession.last_seen.desc())
        .limit(1)
    ).first()
    open_gaps = db.execute(
        select(func.count(), func.coalesce(func.sum(SequenceGap.missing), 0)).where(
            SequenceGap.site == site,
            SequenceGap.gateway == gateway,
            SequenceGap.closed_at.is_(None),
        )
    ).one()
    return GatewayHealth(
        gateway=GatewayOut.model_validate(row),
        devices=db.scalar(
            select(func.count()).where(Device.site == site, Device.gateway == gateway)
        )
        or 0,
        messages_this_boot=None if sess is None else sess.messages,
        last_message=None if sess is None else sess.last_seen,
        open_gaps=int(open_gaps[0]),
        missing_messages=int(open_gaps[1]),
    )


@router.get("/gateways/{site}/{gateway}/gaps", summary="Sequence gaps of a gateway")
def gateway_gaps(
    site: str,
    gateway: str,
    who: Reader,
    db: DbSession,
    open_only: bool = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[GapOut]:
    q = (
        select(SequenceGap)
        .where(SequenceGap.site == site, SequenceGap.gateway == gateway)
        .order_by(SequenceGap.detected_at.desc())
        .limit(limit)
    )
    if open_only:
        q = q.where(SequenceGap.closed_at.is_(None))
    return [GapOut.model_validate(g) for g in db.scalars(q)]


@router.get("/registry/pending", summary="Gateways and devices waiting for approval")
def pending(who: Manager, db: DbSession, svc: Svc, site: str | None = None) -> PendingOut:
    gateways, devices = svc.registry.pending(db, site)
    return PendingOut(
        gateways=[GatewayOut.model_validate(g) for g in gateways],
        devices=[DeviceOut.model_validate(d) for d in devices],
    )


@router.post("/registry/devices/{site}/{device}/approval", summary="Approve or reject a device")
def approve_device(
    site: str, device: str, body: ApprovalIn, who: Manager, db: DbSession, svc: Svc
) -> DeviceOut:
    try:
        svc.registry.set_device_approval(db, site, device, body.approval, body.kind)
    except RegistryError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    audit.record(db, who, "device.approval", f"{site}/{device}", {"approval": body.approval})
    db.commit()
    return get_device(site, device, who, db)


@router.post("/registry/gateways/{site}/{gateway}/approval", summary="Approve or reject a gateway")
async def approve_gateway(
    site: str, gateway: str, body: ApprovalIn, who: Manager, db: DbSession, svc: Svc
) -> GatewayOut:
    try:
        svc.registry.set_gateway_approval(db, site, gateway, body.approval)
    except RegistryError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    audit.record(db, who, "gateway.approval", f"{site}/{gateway}", {"approval": body.approval})
    db.commit()
    if body.approval is Approval.APPROVED and svc.pusher is not None:
        await svc.pusher.push(site, gateway)  # the new gateway gets its rules at once
    row = db.get_one(Gateway, (site, gateway))
    return GatewayOut.model_validate(row)

"""Commands: manual ones (e.g. open a door, with a required reason — audited) and history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.params import RowIdFilter
from cloud.api.services import Svc
from cloud.auth import audit
from cloud.auth.deps import STAFF, DbSession, Principal, Role, require_roles
from cloud.commands import service
from cloud.commands.publisher import PublishQueueFull
from cloud.registry.tables import Device
from protocols.ids import Ident
from protocols.messages import Name

router = APIRouter(prefix="/api/commands", tags=["commands"])
Operator = Annotated[Principal, Depends(require_roles(Role.MANAGER, Role.GUARD))]
Reader = Annotated[Principal, Depends(require_roles(*STAFF))]


class CommandIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    site: Ident
    target: Ident = Field(description="The device or door the command is for")
    name: Name = Field(description="door.open, door.lock, siren.on, siren.off, …")
    params: dict[Name, str | bool | float] = Field(default_factory=dict, max_length=32)
    reason: Annotated[str, Field(min_length=3, max_length=500)] = Field(
        description="Why (required; kept in the audit log)"
    )
    gateway: Ident | None = Field(None, description="Defaults to the target's gateway")
    ttl_s: Annotated[float, Field(gt=0, le=3600)] | None = None
    alert_id: int | None = None


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Send a command (audited)")
def send_command(body: CommandIn, who: Operator, db: DbSession, svc: Svc) -> service.CommandOut:
    gateway = body.gateway
    if gateway is None:
        device = db.get(Device, (body.site, body.target))
        if device is None or device.gateway is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"device {body.site}/{body.target} unknown or without a gateway; give 'gateway'",
            )
        gateway = device.gateway
    if svc.publisher is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "MQTT is not configured")
    command = service.issue(
        db,
        site=body.site,
        gateway=gateway,
        name=body.name,
        target=body.target,
        params=dict(body.params),
        now=datetime.now(UTC),
        ttl_s=body.ttl_s or svc.settings.command_ttl_s,
        issued_by=who.username,
        reason=body.reason,
        alert_id=body.alert_id,
    )
    audit.record(
        db,
        who,
        body.name,
        f"{body.site}/{body.target}",
        {"reason": body.reason, "cmd_id": command.cmd_id, "gateway": gateway},
    )
    try:
        svc.publisher.send(body.site, gateway, command)
    except PublishQueueFull as exc:
        db.rollback()
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    db.commit()
    out = service.get_command(db, command.cmd_id)
    assert out is not None
    return out


@router.get("", summary="Recent commands and their acknowledgements")
def list_commands(
    who: Reader,
    db: DbSession,
    site: str | None = None,
    alert_id: RowIdFilter = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[service.CommandOut]:
    return service.list_commands(db, site=site, alert_id=alert_id, limit=limit)


@router.get("/{cmd_id}", summary="One command")
def get_command(cmd_id: str, who: Reader, db: DbSession) -> service.CommandOut:
    out = service.get_command(db, cmd_id)
    if out is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {cmd_id!r}")
    return out

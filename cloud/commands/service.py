"""Resolve command targets through the registry, record commands, match acknowledgements."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.commands.tables import CommandRow, CommandStatus
from cloud.registry.tables import Approval, Device
from protocols.codec import new_id
from protocols.kinds import DeviceKind
from protocols.messages import AckStatus, Command, CommandAck
from protocols.rules.actions import CommandTarget
from protocols.rules.language import Scope


class CommandOut(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    cmd_id: str
    site: str
    gateway: str
    target: str | None
    name: str
    params: dict[str, Any]
    issued_at: datetime
    expires_at: datetime
    issued_by: str
    reason: str | None
    rule_id: str | None
    alert_id: int | None
    status: CommandStatus
    ack_at: datetime | None
    ack_reason: str | None
    result: dict[str, Any]


class Addressed(BaseModel):
    """A concrete device and the gateway that reaches it."""

    model_config = ConfigDict(frozen=True)

    site: str
    gateway: str
    device: str


def resolve(session: Session, target: CommandTarget) -> list[Addressed]:
    """Every approved device of ``target.kind`` in the target's scope (zone, building, site)."""
    query = select(Device.site, Device.gateway, Device.id).where(
        Device.site == target.site,
        Device.kind == DeviceKind(target.kind).value,
        Device.gateway.is_not(None),
        Device.approval != Approval.REJECTED.value,
    )
    if target.scope is Scope.ZONE:
        if target.zone is None:
            return []
        query = query.where(Device.zone == target.zone)
    elif target.scope is Scope.BUILDING:
        if target.building is None:
            return []
        query = query.where(Device.building == target.building)
    elif target.scope is Scope.DEVICE:
        if target.device is None:
            return []
        query = query.where(Device.id == target.device)
    rows = session.execute(query.order_by(Device.gateway, Device.id))
    found = [Addressed(site=s, gateway=g, device=d) for s, g, d in rows if g is not None]
    if target.tags:
        wanted = set(target.tags)
        tagged = {
            d.id
            for d in session.scalars(
                select(Device).where(
                    Device.site == target.site, Device.id.in_([a.device for a in found])
                )
            )
            if wanted <= set((d.attrs or {}).get("tags", []))
        }
        found = [a for a in found if a.device in tagged]
    return found


def issue(
    session: Session,
    *,
    site: str,
    gateway: str,
    name: str,
    target: str | None,
    params: dict[str, Any],
    now: datetime,
    ttl_s: float,
    issued_by: str,
    reason: str | None = None,
    rule_id: str | None = None,
    alert_id: int | None = None,
) -> Command:
    """Record a command and return the wire message to publish on the gateway's ``cmd``."""
    command = Command(
        cmd_id=new_id(),
        name=name,
        target=target,
        params=params,
        issued_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
        issued_by=issued_by[:64],
    )
    session.add(
        CommandRow(
            cmd_id=command.cmd_id,
            site=site,
            gateway=gateway,
            target=target,
            name=name,
            params=dict(params),
            issued_at=command.issued_at,
            expires_at=command.expires_at,
            issued_by=issued_by[:64],
            reason=reason,
            rule_id=rule_id,
            alert_id=alert_id,
            status=CommandStatus.SENT.value,
        )
    )
    session.flush()
    return command


_ACK_STATUS = {
    AckStatus.OK: CommandStatus.OK,
    AckStatus.DUPLICATE: CommandStatus.DUPLICATE,
    AckStatus.REFUSED: CommandStatus.REFUSED,
    AckStatus.FAILED: CommandStatus.FAILED,
}


def apply_ack(session: Session, site: str, gateway: str, ack: CommandAck) -> CommandOut | None:
    """Record a gateway's answer. None if the command is unknown here (another cloud's?).

    A DUPLICATE answer never overwrites an earlier OK/FAILED: the first result stands.
    """
    row = session.scalars(
        select(CommandRow).where(CommandRow.cmd_id == ack.cmd_id).with_for_update()
    ).one_or_none()
    if row is None or row.site != site or row.gateway != gateway:
        return None
    status = _ACK_STATUS[ack.status]
    if status is CommandStatus.DUPLICATE and row.status != CommandStatus.SENT:
        return CommandOut.model_validate(row)
    row.status = status.value
    row.ack_at = ack.ts
    row.ack_reason = ack.reason
    row.result = dict(ack.result)
    session.flush()
    return CommandOut.model_validate(row)


def expire(session: Session, now: datetime) -> int:
    """Mark commands still unanswered after their expiry; returns how many."""
    result = session.execute(
        update(CommandRow)
        .where(CommandRow.status == CommandStatus.SENT.value, CommandRow.expires_at <= now)
        .values(status=CommandStatus.EXPIRED.value)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def list_commands(
    session: Session,
    *,
    site: str | None = None,
    alert_id: int | None = None,
    limit: int = 100,
) -> list[CommandOut]:
    query = select(CommandRow).order_by(CommandRow.id.desc()).limit(limit)
    if site:
        query = query.where(CommandRow.site == site)
    if alert_id is not None:
        query = query.where(CommandRow.alert_id == alert_id)
    return [CommandOut.model_validate(r) for r in session.scalars(query)]


def get_command(session: Session, cmd_id: str) -> CommandOut | None:
    row = session.scalars(select(CommandRow).where(CommandRow.cmd_id == cmd_id)).one_or_none()
    return None if row is None else CommandOut.model_validate(row)

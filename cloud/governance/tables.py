"""Governance rows: organisations and their members, the service catalogue, incidents with their
timeline, photos and alerts, and whistles (one per summoned department).

Times are aware UTC (:class:`~cloud.alerts.tables.UtcDateTime`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.alerts.tables import UtcDateTime
from cloud.db import Base


class Organisation(Base):
    """A property company, residents' committee, grid, city department, social group or
    volunteer team, and the buildings/zones of a site it serves (empty lists: all of them)."""

    __tablename__ = "gov_organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    phone: Mapped[str | None] = mapped_column(String(32))
    site: Mapped[str] = mapped_column(String(64), index=True)
    buildings: Mapped[list[str]] = mapped_column(JSON, default=list)
    zones: Mapped[list[str]] = mapped_column(JSON, default=list)
    department: Mapped[str | None] = mapped_column(String(16))
    deadlines: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    """Whistle stage deadlines in seconds: ``ack_s``, ``arrive_s``, ``resolve_s``."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class OrgMember(Base):
    __tablename__ = "gov_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("gov_organisations.id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(8))
    name: Mapped[str | None] = mapped_column(String(128))
    phone: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (UniqueConstraint("org_id", "username", name="uq_gov_members_org_user"),)


class CatalogueItem(Base):
    """One service of the catalogue (服务清单): who handles it and within which deadline."""

    __tablename__ = "gov_catalogue"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    category: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(128))
    name_en: Mapped[str] = mapped_column(String(128))
    org_kind: Mapped[str] = mapped_column(String(16))
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("gov_organisations.id", ondelete="SET NULL")
    )
    deadline_s: Mapped[int] = mapped_column(Integer)
    whistle_departments: Mapped[list[str]] = mapped_column(JSON, default=list)
    phase: Mapped[str] = mapped_column(String(16))


class Incident(Base):
    """An incident or work order: from a resident's report, grouped alerts, or a manager."""

    __tablename__ = "gov_incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(64))
    building: Mapped[str | None] = mapped_column(String(64))
    zone: Mapped[str | None] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    reporter: Mapped[str | None] = mapped_column(String(64), index=True)
    confirm_required: Mapped[bool] = mapped_column(Boolean, default=False)
    """Reported by a resident: closing waits for their confirmation (or an override)."""
    created_by: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    org_id: Mapped[int | None] = mapped_column(
        ForeignKey("gov_organisations.id", ondelete="SET NULL"), index=True
    )
    assignee: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    deadline_missed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    """When the deadline loop saw ``due_at`` pass unresolved (and whistled, once)."""
    disposal_note: Mapped[str | None] = mapped_column(Text)
    rating: Mapped[int | None] = mapped_column(Integer)
    resident_comment: Mapped[str | None] = mapped_column(Text)
    confirmed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_gov_incidents_site_zone", "site", "zone", "created_at"),)


class IncidentEvent(Base):
    """One line of an incident's timeline: who did what, when, with which details."""

    __tablename__ = "gov_incident_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("gov_incidents.id", ondelete="CASCADE"), index=True
    )
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class IncidentPhoto(Base):
    __tablename__ = "gov_incident_photos"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("gov_incidents.id", ondelete="CASCADE"), index=True
    )
    uploaded_by: Mapped[str] = mapped_column(String(64))
    ts: Mapped[datetime] = mapped_column(UtcDateTime)
    content_type: Mapped[str] = mapped_column(String(16))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class IncidentAlert(Base):
    """An alert grouped into an incident."""

    __tablename__ = "gov_incident_alerts"

    incident_id: Mapped[int] = mapped_column(
        ForeignKey("gov_incidents.id", ondelete="CASCADE"), primary_key=True
    )
    alert_id: Mapped[int] = mapped_column(
        ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Whistle(Base):
    """A department summoned to an incident; it must acknowledge, arrive and resolve in time."""

    __tablename__ = "gov_whistles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[int] = mapped_column(
        ForeignKey("gov_incidents.id", ondelete="CASCADE"), index=True
    )
    org_id: Mapped[int] = mapped_column(
        ForeignKey("gov_organisations.id", ondelete="CASCADE"), index=True
    )
    blown_at: Mapped[datetime] = mapped_column(UtcDateTime)
    blown_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    auto: Mapped[bool] = mapped_column(Boolean, default=False)
    ack_due: Mapped[datetime] = mapped_column(UtcDateTime)
    arrive_due: Mapped[datetime] = mapped_column(UtcDateTime)
    resolve_due: Mapped[datetime] = mapped_column(UtcDateTime)
    acked_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    reminder_stage: Mapped[str | None] = mapped_column(String(8))
    last_reminder_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_stage: Mapped[str | None] = mapped_column(String(8))

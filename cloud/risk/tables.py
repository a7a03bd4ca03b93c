"""Risk governance rows: the risk register, residents, welfare checks and drills.

No foreign key leaves this area: organisations and incidents (``cloud.governance``) are referred
to by id only, so either area's tables can be migrated on their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloud.alerts.tables import UtcDateTime
from cloud.db import Base


class Risk(Base):
    """One risk of the register (e.g. e-bikes charging in a corridor) and what watches it."""

    __tablename__ = "risk_register"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    building: Mapped[str | None] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    likelihood: Mapped[int] = mapped_column(Integer)
    impact: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    owner_org_id: Mapped[int | None] = mapped_column(Integer)
    device_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    rule_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    measures: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(64))


class Resident(Base):
    """A resident the community looks after (personal data: staff only, see the docs)."""

    __tablename__ = "risk_residents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64), index=True)
    building: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32))
    living_alone: Mapped[bool] = mapped_column(Boolean, default=False)
    activity_devices: Mapped[list[str]] = mapped_column(JSON, default=list)
    welfare_after_h: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class WelfareCheck(Base):
    """A welfare incident opened for a resident (the incident itself lives in governance)."""

    __tablename__ = "risk_welfare_checks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resident_id: Mapped[int] = mapped_column(
        ForeignKey("risk_residents.id", ondelete="CASCADE"), index=True
    )
    incident_id: Mapped[int] = mapped_column(Integer)
    org_id: Mapped[int | None] = mapped_column(Integer)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_activity: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Drill(Base):
    """An exercise: a simulator scenario run against this cloud, and what it produced."""

    __tablename__ = "risk_drills"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(64))
    scenario: Mapped[str] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)
    participants: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    expected: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    """The scenario's expected alerts (rule, severity, subject, deadline in seconds)."""
    check: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """The simulator checker's report (expected vs observed), once finished."""
    passed: Mapped[bool | None] = mapped_column(Boolean)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_risk_drills_site_status", "site", "status"),)

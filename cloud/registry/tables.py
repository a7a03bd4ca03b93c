"""Registry tables: the community's places and the gateways and devices in them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base
from cloud.storage.types import UTCDateTime

Id = String(64)
Name = String(100)


class Approval(StrEnum):
    """Unknown gateways and devices start PENDING: their data is stored but flagged."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Site(Base):
    __tablename__ = "sites"

    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str | None] = mapped_column(Name, nullable=True)
    auto_approve: Mapped[bool] = mapped_column(Boolean, default=False)


class Building(Base):
    __tablename__ = "buildings"

    site: Mapped[str] = mapped_column(Id, ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str | None] = mapped_column(Name, nullable=True)


class Floor(Base):
    __tablename__ = "floors"

    site: Mapped[str] = mapped_column(Id, ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    building: Mapped[str] = mapped_column(Id)
    level: Mapped[int] = mapped_column(Integer)
    name: Mapped[str | None] = mapped_column(Name, nullable=True)


class Unit(Base):
    __tablename__ = "units"

    site: Mapped[str] = mapped_column(Id, ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    building: Mapped[str] = mapped_column(Id)
    floor: Mapped[str] = mapped_column(Id)
    name: Mapped[str | None] = mapped_column(Name, nullable=True)


class Zone(Base):
    __tablename__ = "zones"

    site: Mapped[str] = mapped_column(Id, ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str | None] = mapped_column(Name, nullable=True)
    building: Mapped[str | None] = mapped_column(Id, nullable=True)
    floor: Mapped[str | None] = mapped_column(Id, nullable=True)


class Gateway(Base):
    """A gateway; ``online`` follows its retained birth / last-will messages."""

    __tablename__ = "gateways"

    site: Mapped[str] = mapped_column(Id, ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    name: Mapped[str | None] = mapped_column(Name, nullable=True)
    building: Mapped[str | None] = mapped_column(Id, nullable=True)
    approval: Mapped[str] = mapped_column(String(16), default=Approval.PENDING.value)
    online: Mapped[bool] = mapped_column(Boolean, default=False)
    boot_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    agent_version: Mapped[str | None] = mapped_column(String(32), nullable=True)
    state_reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    state_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Device(Base):
    """A sensor or actuator. ``kind`` is None for an unknown device nobody has described yet."""

    __tablename__ = "devices"

    site: Mapped[str] = mapped_column(Id, ForeignKey("sites.id"), primary_key=True)
    id: Mapped[str] = mapped_column(Id, primary_key=True)
    gateway: Mapped[str | None] = mapped_column(Id, nullable=True)
    kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    name: Mapped[str | None] = mapped_column(Name, nullable=True)
    building: Mapped[str | None] = mapped_column(Id, nullable=True)
    floor: Mapped[str | None] = mapped_column(Id, nullable=True)
    unit: Mapped[str | None] = mapped_column(Id, nullable=True)
    zone: Mapped[str | None] = mapped_column(Id, nullable=True)
    report_interval_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    approval: Mapped[str] = mapped_column(String(16), default=Approval.PENDING.value)
    first_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    online: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

"""Visitor passes issued at the gate terminal (or by residents)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from cloud.db import Base


class _Utc(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would return naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class VisitorPass(Base):
    __tablename__ = "visitor_passes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    site: Mapped[str | None] = mapped_column(String(64), nullable=True)
    visitor_name: Mapped[str] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(64), nullable=True)
    doors: Mapped[list[str]] = mapped_column(JSON, default=list)
    valid_from: Mapped[datetime] = mapped_column(_Utc)
    valid_until: Mapped[datetime] = mapped_column(_Utc, index=True)
    max_uses: Mapped[int] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_Utc)
    revoked_at: Mapped[datetime | None] = mapped_column(_Utc, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

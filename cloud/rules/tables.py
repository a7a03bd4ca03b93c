"""Rules runner rows: the rule set pushed to each gateway, and saved evaluator state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.alerts.tables import UtcDateTime
from cloud.db import Base


class GatewayConfigRow(Base):
    """The last GatewayConfig published (retained) to a gateway; version grows on change."""

    __tablename__ = "gateway_configs"

    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    gateway: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    fingerprint: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)


class RuleStateRow(Base):
    """The evaluator's snapshot per shard, saved on shutdown and restored on start."""

    __tablename__ = "rule_state"

    shard: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)

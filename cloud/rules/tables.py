"""Rules runner rows: the rule set pushed to each gateway, and saved evaluator state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String
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
    """The evaluator's snapshot per shard and how far it has evaluated, saved together.

    ``watermark``: every ``ingest_messages.id`` up to it (of this shard's sites) was evaluated
    and its actions applied when ``state`` was taken; a restart replays the rows after it.
    ``reading_floor``: every ``readings`` row of a message after the watermark has a higher id
    (so the replay finds a message's readings by scanning ``readings.id > reading_floor``).
    ``-1``: a snapshot saved before watermarks existed (the runner then starts at the end).
    """

    __tablename__ = "rule_state"

    shard: Mapped[str] = mapped_column(String(32), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    saved_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    watermark: Mapped[int] = mapped_column(BigInteger, default=-1, server_default="-1")
    reading_floor: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

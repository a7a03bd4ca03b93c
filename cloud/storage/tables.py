"""Ingest's tables: message dedup, the telemetry hot store, events, dead letters and gaps."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base
from cloud.storage.types import EpochMicros, UTCDateTime

Id = String(64)
# BigInteger primary keys autoincrement on PostgreSQL; SQLite needs INTEGER for its rowid.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class StoredEnvelope(Base):
    """One row per accepted uplink message: the dedup key (msg_id) and its sequence data."""

    __tablename__ = "ingest_messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(Id, unique=True)
    site: Mapped[str] = mapped_column(Id)
    gateway: Mapped[str] = mapped_column(Id)
    channel: Mapped[str] = mapped_column(String(16))
    boot_id: Mapped[str] = mapped_column(Id)
    seq: Mapped[int] = mapped_column(BigInteger)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    historical: Mapped[bool] = mapped_column(Boolean)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_ingest_messages_gateway_boot_seq", "site", "gateway", "boot_id", "seq"),
    )


class Series(Base):
    """One time series: a metric of a device at a site, as reported through a gateway.

    Readings reference it by id, so each reading row carries an integer instead of four
    strings, and the readings index is (series, ts) instead of (site, device, metric, ts). A
    device re-wired to another gateway starts a new series; readers ask by (site, device,
    metric) and get every gateway's series (the unique index serves that prefix).
    """

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(Id)
    device: Mapped[str] = mapped_column(Id)
    metric: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str] = mapped_column(Id)

    __table_args__ = (
        UniqueConstraint("site", "device", "metric", "gateway", name="uq_series_key"),
    )


class Reading(Base):
    """The telemetry hot store: one row per reading. Retention deletes old rows.

    Per row only what cannot be shared (measured on SQLite, docs/cloud-storage.md): the
    series id, the value, the time as integer microseconds (:class:`EpochMicros`), the
    message's historical flag, the pending flag of the reading's device at ingest, and the
    ``ingest_messages.id`` of its message (``message``; None where the message row was
    already forgotten by retention when the database was migrated).
    """

    __tablename__ = "readings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    series: Mapped[int] = mapped_column(BigInteger)
    value: Mapped[float] = mapped_column(Float)
    ts: Mapped[datetime] = mapped_column(EpochMicros)
    historical: Mapped[bool] = mapped_column(Boolean)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    message: Mapped[int | None] = mapped_column(BigInteger, nullable=True)

    # One index only: every extra index costs insert throughput (measured on SQLite: none
    # 340k rows/s, the text-keyed (site, device, metric, ts) one 100k, plus one on ts alone
    # 63k). Retention's ``ts <`` delete scans.
    __table_args__ = (Index("ix_readings_series_ts", "series", "ts"),)


class ReadingRollup(Base):
    """Per-hour min/avg/max of a series, kept after raw readings are deleted by retention."""

    __tablename__ = "reading_rollups"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(Id)
    device: Mapped[str] = mapped_column(Id)
    metric: Mapped[str] = mapped_column(String(64))
    bucket_s: Mapped[int] = mapped_column(Integer)
    start: Mapped[datetime] = mapped_column(UTCDateTime)
    count: Mapped[int] = mapped_column(Integer)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    sum: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint(
            "site", "device", "metric", "bucket_s", "start", name="uq_reading_rollups_bucket"
        ),
    )


class DeviceEventRow(Base):
    __tablename__ = "device_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(Id, unique=True)
    site: Mapped[str] = mapped_column(Id)
    gateway: Mapped[str] = mapped_column(Id)
    device: Mapped[str] = mapped_column(Id)
    event: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16))
    value: Mapped[float | None] = mapped_column(Float, nullable=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    historical: Mapped[bool] = mapped_column(Boolean)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_device_events_device_ts", "site", "device", "ts"),)


class AccessEventRow(Base):
    """Access decisions and door alarms. Thumbnails are kept until ``thumbnail_expires_at``."""

    __tablename__ = "access_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(Id, unique=True)
    site: Mapped[str] = mapped_column(Id)
    gateway: Mapped[str] = mapped_column(Id)
    door: Mapped[str] = mapped_column(Id)
    kind: Mapped[str] = mapped_column(String(32))
    decision: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    camera: Mapped[str | None] = mapped_column(Id, nullable=True)
    person_id: Mapped[str | None] = mapped_column(Id, nullable=True)
    person_name: Mapped[str | None] = mapped_column(String(64), nullable=True)
    distance: Mapped[float | None] = mapped_column(Float, nullable=True)
    liveness: Mapped[float | None] = mapped_column(Float, nullable=True)
    thumbnail_jpeg_b64: Mapped[str | None] = mapped_column(Text, nullable=True)
    thumbnail_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attrs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    historical: Mapped[bool] = mapped_column(Boolean)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_access_events_door_ts", "site", "door", "ts"),)


class CommandAckRow(Base):
    __tablename__ = "command_acks"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(Id, unique=True)
    site: Mapped[str] = mapped_column(Id)
    gateway: Mapped[str] = mapped_column(Id)
    cmd_id: Mapped[str] = mapped_column(Id, index=True)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(String(500), nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ts: Mapped[datetime] = mapped_column(UTCDateTime)
    historical: Mapped[bool] = mapped_column(Boolean)


class DeadLetter(Base):
    """A message that broke the wire contract, kept byte for byte with the reason."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class SequenceGap(Base):
    """Sequence numbers missing from one gateway boot: ``first_seq..last_seq`` as detected.

    ``missing`` counts how many are still absent; replayed messages decrement it and the gap
    is closed (``closed_at``) when it reaches zero.
    """

    __tablename__ = "sequence_gaps"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(Id)
    gateway: Mapped[str] = mapped_column(Id)
    boot_id: Mapped[str] = mapped_column(Id)
    first_seq: Mapped[int] = mapped_column(BigInteger)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    missing: Mapped[int] = mapped_column(BigInteger)
    detected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_sequence_gaps_gateway", "site", "gateway", "boot_id"),)


class GatewaySession(Base):
    """One gateway boot as seen by ingest: highest sequence number and first/last message."""

    __tablename__ = "gateway_sessions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(Id)
    gateway: Mapped[str] = mapped_column(Id)
    boot_id: Mapped[str] = mapped_column(Id)
    max_seq: Mapped[int] = mapped_column(BigInteger)
    messages: Mapped[int] = mapped_column(BigInteger)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("site", "gateway", "boot_id", name="uq_gateway_sessions_boot"),
    )

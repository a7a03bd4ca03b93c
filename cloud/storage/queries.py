"""Reads and maintenance over the ingest tables: gaps, chart series, retention and rollups."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, delete, func, select, type_coerce, update
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from cloud.storage.tables import (
    AccessEventRow,
    DeadLetter,
    Reading,
    ReadingRollup,
    SequenceGap,
    Series,
    StoredEnvelope,
)

ROLLUP_S = 3600


def _epoch_s() -> ColumnElement[int]:
    """``readings.ts`` in whole seconds since the epoch (the column holds microseconds)."""
    return type_coerce(Reading.ts, BigInteger) // 1_000_000


@dataclass(frozen=True, slots=True)
class Gap:
    site: str
    gateway: str
    boot_id: str
    first_seq: int
    last_seq: int
    missing: int
    detected_at: datetime
    closed_at: datetime | None

    @property
    def open(self) -> bool:
        return self.closed_at is None


def gaps(
    session: Session,
    site: str | None = None,
    gateway: str | None = None,
    include_closed: bool = False,
) -> list[Gap]:
    """Sequence gaps, oldest first: open ones only unless ``include_closed``."""
    q = select(SequenceGap).order_by(SequenceGap.detected_at, SequenceGap.id)
    if site is not None:
        q = q.where(SequenceGap.site == site)
    if gateway is not None:
        q = q.where(SequenceGap.gateway == gateway)
    if not include_closed:
        q = q.where(SequenceGap.closed_at.is_(None))
    return [
        Gap(
            g.site,
            g.gateway,
            g.boot_id,
            g.first_seq,
            g.last_seq,
            g.missing,
            g.detected_at,
            g.closed_at,
        )
        for g in session.scalars(q)
    ]


@dataclass(frozen=True, slots=True)
class Bucket:
    """One point of a chart: readings in ``[start, start + bucket_s)``."""

    start: datetime
    count: int
    min: float
    avg: float
    max: float


def downsample(
    session: Session,
    site: str,
    device: str,
    metric: str,
    start: datetime,
    end: datetime,
    bucket_s: int,
) -> list[Bucket]:
    """min/avg/max per time bucket of one series from the hot store, oldest first.

    Where retention already removed raw readings, hourly rollups fill in (for ``bucket_s``
    that is a multiple of an hour).
    """
    if bucket_s <= 0:
        raise ValueError("bucket_s must be positive")
    bucket = (_epoch_s() // bucket_s) * bucket_s
    q = (
        select(
            bucket.label("b"),
            func.count(),
            func.min(Reading.value),
            func.avg(Reading.value),
            func.max(Reading.value),
        )
        .join(Series, Series.id == Reading.series)
        .where(Series.site == site, Series.device == device, Series.metric == metric)
        .where(Reading.ts >= start, Reading.ts < end)
        .group_by("b")
        .order_by("b")
    )
    out = {
        int(b): Bucket(_from_epoch(int(b)), int(n), float(lo), float(avg), float(hi))
        for b, n, lo, avg, hi in session.execute(q)
    }
    if bucket_s % ROLLUP_S == 0:
        for b in _rollup_buckets(session, site, device, metric, start, end, bucket_s):
            out.setdefault(int(b.start.timestamp()), b)
    return [out[k] for k in sorted(out)]


def _rollup_buckets(
    session: Session,
    site: str,
    device: str,
    metric: str,
    start: datetime,
    end: datetime,
    bucket_s: int,
) -> list[Bucket]:
    rows = session.scalars(
        select(ReadingRollup)
        .where(ReadingRollup.site == site, ReadingRollup.device == device)
        .where(ReadingRollup.metric == metric, ReadingRollup.bucket_s == ROLLUP_S)
        .where(ReadingRollup.start >= start, ReadingRollup.start < end)
    )
    merged: dict[int, list[ReadingRollup]] = {}
    for r in rows:
        key = int(r.start.timestamp()) // bucket_s * bucket_s
        merged.setdefault(key, []).append(r)
    return [
        Bucket(
            _from_epoch(k),
            sum(r.count for r in rs),
            min(r.min for r in rs),
            sum(r.sum for r in rs) / sum(r.count for r in rs),
            max(r.max for r in rs),
        )
        for k, rs in merged.items()
    ]


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def rollup(session: Session, before: datetime) -> int:
    """Summarise readings older than ``before`` into hourly rows (idempotent); returns rows."""
    hour = (_epoch_s() // ROLLUP_S) * ROLLUP_S
    q = (
        select(
            Series.site,
            Series.device,
            Series.metric,
            hour.label("h"),
            func.count(),
            func.min(Reading.value),
            func.max(Reading.value),
            func.sum(Reading.value),
        )
        .join(Series, Series.id == Reading.series)
        .where(Reading.ts < before)
        .group_by(Series.site, Series.device, Series.metric, "h")
    )
    written = 0
    for site, device, metric, h, n, lo, hi, total in session.execute(q).all():
        start = _from_epoch(int(h))
        existing = session.scalar(
            select(ReadingRollup).where(
                ReadingRollup.site == site,
                ReadingRollup.device == device,
                ReadingRollup.metric == metric,
                ReadingRollup.bucket_s == ROLLUP_S,
                ReadingRollup.start == start,
            )
        )
        if existing is None:
            existing = ReadingRollup(
                site=site, device=device, metric=metric, bucket_s=ROLLUP_S, start=start
            )
            session.add(existing)
        existing.count, existing.min, existing.max, existing.sum = (
            int(n),
            float(lo),
            float(hi),
            float(total),
        )
        written += 1
    session.flush()
    return written


@dataclass(frozen=True, slots=True)
class RetentionResult:
    rollups: int
    readings: int
    thumbnails: int
    messages: int
    dead_letters: int


def apply_retention(
    session: Session,
    now: datetime,
    readings_days: float = 30,
    dedup_days: float = 30,
    dead_letter_days: float = 90,
) -> RetentionResult:
    """Roll up, then delete readings older than ``readings_days``; drop expired thumbnails;
    forget msg_ids older than ``dedup_days`` (a replay older than that would be stored again)
    and dead letters older than ``dead_letter_days``. Runs in the caller's transaction."""
    cut = now - timedelta(days=readings_days)
    rollups = rollup(session, cut)
    readings = _rows(session, delete(Reading).where(Reading.ts < cut))
    thumbs = _rows(
        session,
        update(AccessEventRow)
        .where(AccessEventRow.thumbnail_expires_at <= now)
        .where(AccessEventRow.thumbnail_jpeg_b64.is_not(None))
        .values(thumbnail_jpeg_b64=None),
    )
    messages = _rows(
        session,
        delete(StoredEnvelope).where(StoredEnvelope.received_at < now - timedelta(days=dedup_days)),
    )
    dead = _rows(
        session,
        delete(DeadLetter).where(DeadLetter.received_at < now - timedelta(days=dead_letter_days)),
    )
    return RetentionResult(rollups, readings, thumbs, messages, dead)


def _rows(session: Session, statement: Executable) -> int:
    result = session.execute(statement, execution_options={"synchronize_session": False})
    return int(_cursor(result).rowcount)


def _cursor(result: Result[Any]) -> CursorResult[Any]:
    assert isinstance(result, CursorResult)
    return result

"""Telemetry for charts: a downsampled series (min/avg/max per bucket) and latest values."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from cloud.auth.deps import DbSession, Principal, require_roles
from cloud.storage.tables import Reading, ReadingRollup
from cloud.storage.tables import Series as SeriesRow

router = APIRouter(prefix="/api/telemetry", tags=["telemetry"])
Reader = Annotated[Principal, Depends(require_roles())]

MAX_RAW_ROWS = 200_000


class Bucket(BaseModel):
    model_config = ConfigDict(frozen=True)

    start: datetime
    count: int
    min: float
    avg: float
    max: float


class Series(BaseModel):
    model_config = ConfigDict(frozen=True)

    site: str
    device: str
    metric: str
    since: datetime
    until: datetime
    bucket_s: int
    source: str  # raw | rollup
    buckets: list[Bucket]
    truncated: bool


class Latest(BaseModel):
    model_config = ConfigDict(frozen=True)

    device: str
    metric: str
    value: float
    ts: datetime


def bucket_size(span_s: float, points: int) -> int:
    """A round bucket (1 s, 5 s, 15 s, 1 min, …) giving at most ``points`` buckets."""
    for size in (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 10800, 21600, 43200, 86400):
        if span_s / size <= points:
            return size
    return math.ceil(span_s / points / 86400) * 86400


def downsample(rows: list[tuple[datetime, float]], since: datetime, bucket_s: int) -> list[Bucket]:
    """min/avg/max per bucket of ``bucket_s`` seconds from ``since`` (pure; rows by time)."""
    out: list[Bucket] = []
    current: int | None = None
    values: list[float] = []

    def flush() -> None:
        if current is not None and values:
            out.append(
                Bucket(
                    start=since + timedelta(seconds=current * bucket_s),
                    count=len(values),
                    min=min(values),
                    avg=sum(values) / len(values),
                    max=max(values),
                )
            )

    for ts, value in rows:
        index = int((ts - since).total_seconds() // bucket_s)
        if index != current:
            flush()
            current, values = index, []
        values.append(value)
    flush()
    return out


@router.get("/series", summary="Downsampled series of one device metric, for charts")
def series(
    who: Reader,
    db: DbSession,
    site: str,
    device: str,
    metric: str,
    since: datetime | None = None,
    until: datetime | None = None,
    points: Annotated[int, Query(ge=10, le=5000)] = 300,
) -> Series:
    until = until or datetime.now(UTC)
    since = since or until - timedelta(hours=24)
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since/until need a time zone")
    if since >= until:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since must be before until")
    size = bucket_size((until - since).total_seconds(), points)
    rows = db.execute(
        select(Reading.ts, Reading.value)
        .join(SeriesRow, SeriesRow.id == Reading.series)
        .where(
            SeriesRow.site == site,
            SeriesRow.device == device,
            SeriesRow.metric == metric,
            Reading.ts >= since,
            Reading.ts < until,
        )
        .order_by(Reading.ts)
        .limit(MAX_RAW_ROWS + 1)
    ).all()
    truncated = len(rows) > MAX_RAW_ROWS
    if rows:
        data = [(ts, float(v)) for ts, v in rows[:MAX_RAW_ROWS]]
        return Series(
            site=site, device=device, metric=metric, since=since, until=until, bucket_s=size,
            source="raw", buckets=downsample(data, since, size), truncated=truncated,
        )  # fmt: skip
    rollups = db.scalars(
        select(ReadingRollup)
        .where(
            ReadingRollup.site == site,
            ReadingRollup.device == device,
            ReadingRollup.metric == metric,
            ReadingRollup.start >= since,
            ReadingRollup.start < until,
        )
        .order_by(ReadingRollup.start)
    ).all()
    buckets = [
        Bucket(start=r.start, count=r.count, min=r.min, avg=r.sum / r.count, max=r.max)
        for r in rollups
        if r.count
    ]
    return Series(
        site=site, device=device, metric=metric, since=since, until=until,
        bucket_s=rollups[0].bucket_s if rollups else size, source="rollup", buckets=buckets,
        truncated=False,
    )  # fmt: skip


@router.get("/latest", summary="Latest value of every metric of a device")
def latest(who: Reader, db: DbSession, site: str, device: str) -> list[Latest]:
    newest = (
        select(Reading.series, func.max(Reading.ts).label("ts"))
        .join(SeriesRow, SeriesRow.id == Reading.series)
        .where(SeriesRow.site == site, SeriesRow.device == device)
        .group_by(Reading.series)
        .subquery()
    )
    # A metric reported through two gateways has two series: the newest reading wins.
    rows = db.execute(
        select(SeriesRow.metric, Reading.value, Reading.ts)
        .join(newest, (Reading.series == newest.c.series) & (Reading.ts == newest.c.ts))
        .join(SeriesRow, SeriesRow.id == Reading.series)
        .order_by(SeriesRow.metric, Reading.ts.desc())
    ).all()
    seen: dict[str, Latest] = {}
    for metric, value, ts in rows:
        seen.setdefault(metric, Latest(device=device, metric=metric, value=value, ts=ts))
    return list(seen.values())

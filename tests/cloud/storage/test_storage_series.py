"""Chart series (min/avg/max per bucket), retention with hourly rollups, thumbnail expiry."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest.store import BatchWriter
from cloud.storage import (
    Bucket,
    RetentionPolicy,
    apply_retention,
    downsample,
    retention_forever,
)
from cloud.storage.tables import AccessEventRow, Reading, ReadingRollup, StoredEnvelope
from protocols.codec import new_id
from protocols.messages import AccessEvent, AccessKind
from tests.cloud.storage.storage_support import T0, Gateway


def test_downsample_min_avg_max_per_bucket(engine: Engine, writer: BatchWriter, site: str) -> None:
    gw = Gateway(site)
    # 18 readings 10 s apart over 3 minutes: values 0..17.
    msgs = [gw.telemetry(i, {"t1": float(i)}, ts=T0 + timedelta(seconds=10 * i)) for i in range(18)]
    writer.write(gw.deliver(*msgs))
    with Session(engine) as s:
        series = downsample(s, site, "t1", "temperature", T0, T0 + timedelta(minutes=3), 60)
        other = downsample(s, site, "t1", "humidity", T0, T0 + timedelta(minutes=3), 60)
    assert series == [
        Bucket(T0, 6, 0.0, 2.5, 5.0),
        Bucket(T0 + timedelta(minutes=1), 6, 6.0, 8.5, 11.0),
        Bucket(T0 + timedelta(minutes=2), 6, 12.0, 14.5, 17.0),
    ]
    assert other == []


def test_retention_deletes_old_readings_but_keeps_hourly_rollups(
    engine: Engine, writer: BatchWriter, site: str
) -> None:
    gw = Gateway(site)
    now = datetime.now(UTC).replace(minute=30, second=0, microsecond=0)
    old = now - timedelta(days=40)
    hour = old.replace(minute=0)
    msgs = [
        gw.telemetry(i, {"t1": v}, ts=hour + timedelta(minutes=10 * i))
        for i, v in enumerate([1.0, 5.0, 3.0])
    ]
    msgs.append(gw.telemetry(3, {"t1": 20.0}, ts=now))
    writer.write(gw.deliver(*msgs))
    with Session(engine) as s, s.begin():
        result = apply_retention(s, now, readings_days=30)
    assert (result.readings, result.rollups) == (3, 1)
    with Session(engine) as s:
        assert s.scalar(select(func.count(Reading.id))) == 1
        series = downsample(s, site, "t1", "temperature", old - timedelta(hours=1), now, 3600)
        recent = downsample(
            s, site, "t1", "temperature", now - timedelta(hours=1), now + timedelta(hours=1), 3600
        )
    assert series == [Bucket(hour, 3, 1.0, 3.0, 5.0)]  # from the rollup
    assert [b.max for b in recent] == [20.0]
    with Session(engine) as s, s.begin():
        again = apply_retention(s, now, readings_days=30)
    assert again.readings == 0


def test_thumbnails_expire_but_access_events_stay(engine: Engine, site: str) -> None:
    from cloud.registry import Registry

    writer = BatchWriter(engine, Registry(engine), thumbnail_ttl=timedelta(days=7))
    gw = Gateway(site)
    event = AccessEvent(
        msg_id=new_id(),
        boot_id=gw.boot_id,
        seq=0,
        ts=T0,
        door="gate-1",
        kind=AccessKind.UNKNOWN_FACE,
        reason="no_match",
        thumbnail_jpeg_b64="aGVsbG8=",
    )
    writer.write(gw.deliver(event))
    with Session(engine) as s, s.begin():
        early = apply_retention(
            s, datetime.now(UTC) + timedelta(days=6), readings_days=3650, dedup_days=3650
        )
        late = apply_retention(
            s, datetime.now(UTC) + timedelta(days=8), readings_days=3650, dedup_days=3650
        )
    assert (early.thumbnails, late.thumbnails) == (0, 1)
    with Session(engine) as s:
        row = s.scalar(select(AccessEventRow))
        assert row is not None and row.thumbnail_jpeg_b64 is None and row.kind == "unknown_face"
        assert s.scalar(select(func.count(StoredEnvelope.id))) == 1


@pytest.mark.anyio
async def test_retention_job_runs_in_the_background(
    engine: Engine, writer: BatchWriter, site: str
) -> None:
    gw = Gateway(site)
    old = datetime.now(UTC) - timedelta(days=10)
    writer.write(gw.deliver(gw.telemetry(0, ts=old), gw.telemetry(1, ts=datetime.now(UTC))))

    def readings() -> int:
        with Session(engine) as s:
            return int(s.scalar(select(func.count(Reading.id))) or 0)

    task = asyncio.create_task(retention_forever(engine, RetentionPolicy(readings_days=7), 0.05))
    try:
        async with asyncio.timeout(10):
            while await asyncio.to_thread(readings) != 1:  # noqa: ASYNC110  (polls a database)
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    with Session(engine) as s:
        assert s.scalar(select(func.count(ReadingRollup.id))) == 1

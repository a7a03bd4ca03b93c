"""The bulk path (COPY on PostgreSQL, executemany on SQLite): values, times and ids as sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest.store import BatchWriter
from cloud.storage.tables import Reading, Series, StoredEnvelope
from protocols.codec import new_id
from protocols.messages import Reading as WireReading
from protocols.messages import Telemetry
from tests.cloud.storage.storage_support import T0, Gateway

PLUS_TWO = timezone(timedelta(hours=2))


def test_rows_round_trip_through_the_bulk_path(
    engine: Engine, writer: BatchWriter, site: str
) -> None:
    gw = Gateway(site)
    local = datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=PLUS_TWO)  # 08:00:00.123456 UTC
    odd = Telemetry(
        msg_id=new_id(),
        boot_id=gw.boot_id,
        seq=0,
        ts=local,
        historical=True,
        readings=(
            WireReading(device="smoke-1", metric="smoke", value=True, ts=local),
            WireReading(device="meter-1", metric="energy", value=-1.5e-7, ts=local),
            WireReading(device="meter-1", metric="energy", value=12345.678, ts=T0),
        ),
    )
    plain = [gw.telemetry(seq, {"d1": float(seq), "d2": -float(seq)}) for seq in range(1, 40)]
    result = writer.write(gw.deliver(odd, *plain))
    assert result.readings == 3 + 2 * 39
    with Session(engine) as s:
        ids = {m: i for m, i in s.execute(select(StoredEnvelope.msg_id, StoredEnvelope.id))}
        of_message = select(Series.device, Reading.value, Reading.ts, Reading.historical).join(
            Series, Series.id == Reading.series
        )
        rows = s.execute(of_message.where(Reading.message == ids[odd.msg_id])).all()
        last = select(Reading.value).join(Series, Series.id == Reading.series)
        last = last.where(Reading.message == ids[plain[-1].msg_id])
        stored_plain = s.scalar(last.where(Series.device == "d2"))
    utc = local.astimezone(UTC)
    assert sorted(rows) == sorted(
        [
            ("meter-1", -1.5e-7, utc, True),
            ("meter-1", 12345.678, T0, True),
            ("smoke-1", 1.0, utc, True),
        ]
    )
    assert stored_plain == -39.0
    # row_id: the id of each message's row, handed out in arrival order.
    sent = [odd, *plain]
    assert [m.row_id for m in result.stored] == [ids[m.msg_id] for m in sent]
    assert [m.row_id for m in result.stored] == sorted(ids.values())

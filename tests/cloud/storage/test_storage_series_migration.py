"""Migration d4f1a8c3b2e6 on a database holding readings: they read back the same, and back.

The previous head's ``readings`` table (site, gateway, device, metric, ts as a datetime column,
msg_id) is filled through SQLAlchemy Core the way ingest stored it, then ``upgrade heads``
moves it to series ids, integer microseconds and message row ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.ingest.store import BatchWriter
from cloud.migrations import alembic_config, upgrade
from cloud.registry import Registry
from cloud.storage.queries import downsample
from cloud.storage.tables import Reading, Series, StoredEnvelope
from cloud.storage.types import UTCDateTime
from tests.cloud.storage.storage_support import Gateway

PREVIOUS = "4be828933d8d"
REVISION = "d4f1a8c3b2e6"
T0 = datetime(2026, 11, 27, 8, 0, 0, 250001, tzinfo=UTC)

OLD_READINGS = sa.table(
    "readings",
    sa.column("site", sa.String),
    sa.column("gateway", sa.String),
    sa.column("device", sa.String),
    sa.column("metric", sa.String),
    sa.column("value", sa.Float),
    sa.column("ts", UTCDateTime()),
    sa.column("historical", sa.Boolean),
    sa.column("pending", sa.Boolean),
    sa.column("msg_id", sa.String),
)
OLD_MESSAGES = sa.table(
    "ingest_messages",
    sa.column("msg_id", sa.String),
    sa.column("site", sa.String),
    sa.column("gateway", sa.String),
    sa.column("channel", sa.String),
    sa.column("boot_id", sa.String),
    sa.column("seq", sa.BigInteger),
    sa.column("ts", UTCDateTime()),
    sa.column("historical", sa.Boolean),
    sa.column("pending", sa.Boolean),
    sa.column("received_at", UTCDateTime()),
)

# (site, gateway, device, metric, value, ts, historical, pending, msg_id)
Row = tuple[str, str, str, str, float, datetime, bool, bool, str]
ROWS: list[Row] = [
    ("s1", "gw1", "heat-1", "temperature", 21.5, T0, False, False, "m1"),
    ("s1", "gw1", "heat-1", "temperature", 22.0, T0 + timedelta(seconds=1), False, False, "m2"),
    ("s1", "gw1", "heat-1", "humidity", 40.0, T0 + timedelta(seconds=1), False, False, "m2"),
    ("s1", "gw1", "smoke-1", "smoke", 1.0, T0 + timedelta(microseconds=7), True, True, "m3"),
    # the same device re-wired to another gateway: a second series of the same metric
    ("s1", "gw2", "heat-1", "temperature", 23.0, T0 + timedelta(hours=2), False, False, "m4"),
    ("s2", "gw1", "heat-1", "temperature", -5.25, T0 - timedelta(days=400), False, False, "m5"),
    # a reading whose message retention already forgot
    ("s1", "gw1", "heat-1", "temperature", 19.0, T0 - timedelta(days=40), False, False, "gone"),
]


@pytest.fixture
def old_engine(db_url: str) -> Iterator[Engine]:
    """A database at the previous readings schema, holding ROWS and their messages."""
    engine = make_engine(db_url)
    command.upgrade(alembic_config(engine=engine), PREVIOUS)
    messages = sorted({(r[0], r[1], r[8], r[5], r[6]) for r in ROWS if r[8] != "gone"})
    with engine.begin() as conn:
        conn.execute(
            OLD_MESSAGES.insert(),
            [
                {"msg_id": m, "site": s, "gateway": g, "channel": "telemetry", "boot_id": "b",
                 "seq": i, "ts": ts, "historical": h, "pending": False, "received_at": ts}
                for i, (s, g, m, ts, h) in enumerate(messages)
            ],
        )  # fmt: skip
        conn.execute(OLD_READINGS.insert(), [dict(zip(_NAMES, r, strict=True)) for r in ROWS])
    yield engine
    engine.dispose()


_NAMES = ("site", "gateway", "device", "metric", "value", "ts", "historical", "pending", "msg_id")


def migrated_rows(engine: Engine) -> list[Row]:
    """Every reading with its series and message, as the previous schema held it."""
    q = (
        sa.select(
            Series.site,
            Series.gateway,
            Series.device,
            Series.metric,
            Reading.value,
            Reading.ts,
            Reading.historical,
            Reading.pending,
            sa.func.coalesce(StoredEnvelope.msg_id, "gone"),
        )
        .join(Series, Series.id == Reading.series)
        .outerjoin(StoredEnvelope, StoredEnvelope.id == Reading.message)
    )
    with Session(engine) as s:
        return sorted(tuple(r) for r in s.execute(q))  # type: ignore[misc]


def old_rows(engine: Engine) -> list[Row]:
    with engine.connect() as conn:
        got = conn.execute(sa.select(*(OLD_READINGS.c[n] for n in _NAMES))).all()
    return sorted(
        (s, g, d, m, v, ts, bool(h), bool(p), mid) for s, g, d, m, v, ts, h, p, mid in got
    )


def test_upgrade_keeps_every_reading_and_downgrade_restores_them(old_engine: Engine) -> None:
    engine = old_engine
    assert old_rows(engine) == sorted(ROWS)
    upgrade(engine)
    assert migrated_rows(engine) == sorted(ROWS)
    with Session(engine) as s:
        keys = set(s.execute(sa.select(Series.site, Series.device, Series.metric, Series.gateway)))
        forgotten = s.scalar(sa.select(Reading.message).where(Reading.value == 19.0))
        # Charts read the migrated series: both gateways' series of s1/heat-1/temperature.
        day = downsample(
            s, "s1", "heat-1", "temperature", T0 - timedelta(days=41), T0 + timedelta(days=1), 86400
        )
    assert len(keys) == 5
    assert forgotten is None
    assert sum(b.count for b in day) == 4
    assert min(b.min for b in day) == 19.0 and max(b.max for b in day) == 23.0

    # Ingest after the migration adds to the existing series instead of creating another.
    writer = BatchWriter(engine, Registry(engine))
    gw = Gateway("s1", "gw1")
    writer.write(gw.deliver(gw.telemetry(0, {"heat-1": 24.0}, ts=T0 + timedelta(hours=3))))
    with Session(engine) as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Series)) == 5
    assert len(migrated_rows(engine)) == len(ROWS) + 1

    command.downgrade(alembic_config(engine=engine), f"{REVISION}-1")
    after = [r for r in old_rows(engine) if r[4] != 24.0]
    # A forgotten message's msg_id cannot come back: it is left empty.
    assert after == sorted(r if r[8] != "gone" else (*r[:8], "") for r in ROWS)
    assert sa.inspect(engine).has_table("series") is False

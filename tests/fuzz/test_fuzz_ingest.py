"""Fuzz the live ingest: 10,500 malformed payloads and topics through a real mosquitto into
``cloud.ingest.Ingest`` (PostgreSQL) while a gateway's valid traffic flows on the same topics.

Ingest must not crash, must count every reject by the reason it was built with (stats and
dead-letter rows alike), and must store every valid reading exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest import Ingest
from cloud.registry import Registry
from cloud.storage import gaps
from cloud.storage.tables import DeadLetter, Reading, Series, StoredEnvelope
from linli.services import Mosquitto
from tests.cloud.ingest.ingest_support import Gateway, Publisher, config, running, until
from tests.fuzz.malformed import Maker, malformed

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

MALFORMED = 10_500
VALID = 2_000
READINGS = 5


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    return pg_engine


def dead_letters(engine: Engine) -> Counter[str]:
    with Session(engine) as s:
        rows = s.execute(select(DeadLetter.reason, func.count()).group_by(DeadLetter.reason))
        return Counter({reason: int(n) for reason, n in rows})


def settled(ingest: Ingest) -> int:
    """Messages whose batch is committed: stored, duplicates and rejects."""
    s = ingest.stats
    return s.stored + s.duplicates + sum(s.rejects.values())


@pytest.mark.anyio
async def test_malformed_flood_is_counted_and_valid_traffic_is_unaffected(
    engine: Engine, mosquitto: Mosquitto, site: str
) -> None:
    gw = Gateway(site, "gw1")
    bad = malformed(site, gw.gateway, MALFORMED)
    expected = Counter(f.reason.value for f in bad)
    good = [gw.frame(gw.telemetry(readings=READINGS, value=float(n))) for n in range(VALID)]
    # Interleave: valid frames keep their order, malformed ones land anywhere between them.
    rng = random.Random(3)
    slots = sorted(rng.randrange(len(good) + 1) for _ in bad)
    frames: list[tuple[str, bytes]] = []
    it = iter(bad)
    g = 0
    for slot in slots:
        while g < slot:
            frames.append(good[g])
            g += 1
        f = next(it)
        frames.append((f.topic, f.payload))
    frames.extend(good[g:])

    ingest = Ingest(
        config(mosquitto, site, all_channels=True, batch_size=500), engine, Registry(engine)
    )
    publisher = Publisher(mosquitto.port)
    try:
        async with running(ingest) as task:
            await asyncio.to_thread(publisher.send, frames)
            total = MALFORMED + VALID
            await until(lambda: settled(ingest) >= total, within=180)
            await asyncio.sleep(1.0)  # a redelivered copy would land now
            assert not task.done(), "ingest stopped"
    finally:
        publisher.close()

    stats = ingest.stats
    assert stats.received == MALFORMED + VALID
    assert dict(stats.rejects) == dict(expected), "rejects by reason differ from what was sent"
    assert dead_letters(engine) == expected
    assert stats.hook_errors == 0 and stats.duplicates == 0
    assert stats.stored == VALID
    with Session(engine) as s:
        values = s.execute(
            select(Series.device, Reading.value)
            .join(Series, Series.id == Reading.series)
            .where(Series.site == site)
        ).all()
        seqs = s.scalars(select(StoredEnvelope.seq).where(StoredEnvelope.site == site)).all()
        open_gaps = gaps(s, site)
    assert len(values) == len(set(values)) == VALID * READINGS
    assert sorted(seqs) == list(range(VALID))
    assert open_gaps == []


@pytest.mark.anyio
async def test_reject_detail_with_nul_is_dead_lettered_under_its_reason(
    engine: Engine, mosquitto: Mosquitto, site: str
) -> None:
    """Regression (found by the flood above): an unknown JSON key containing NUL made the
    dead-letter insert fail on PostgreSQL, so the whole batch fell back to one transaction
    per message and the reject was counted as store_error instead of schema."""
    gw = Gateway(site, "gw1")
    maker = Maker(site, gw.gateway, seed=1)
    bad = [maker.nul_in_key() for _ in range(3)]
    good = [gw.frame(gw.telemetry(readings=2, value=float(n))) for n in range(3)]
    frames = [
        f for pair in zip(good, [(b.topic, b.payload) for b in bad], strict=True) for f in pair
    ]
    ingest = Ingest(config(mosquitto, site, batch_size=50, linger_s=0.5), engine, Registry(engine))
    publisher = Publisher(mosquitto.port)
    try:
        async with running(ingest):
            await asyncio.to_thread(publisher.send, frames)
            await until(lambda: settled(ingest) >= len(frames), within=60)
    finally:
        publisher.close()
    assert dict(ingest.stats.rejects) == {"schema": 3}
    assert ingest.stats.stored == 3 and ingest.stats.write_failures == 0
    with Session(engine) as s:
        details = s.scalars(select(DeadLetter.detail)).all()
    assert len(details) == 3 and all("bad\\x00key" in d for d in details)

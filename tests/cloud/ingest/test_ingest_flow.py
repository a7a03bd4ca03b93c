"""Ingest end to end through a real mosquitto: store, dedup, reject, acknowledge after commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest import Ingest, StoredMessage
from cloud.registry import Registry
from cloud.storage import gaps
from cloud.storage.tables import DeadLetter, Reading, StoredEnvelope
from linli.services import Mosquitto
from tests.cloud.ingest.ingest_support import Gateway, Publisher, config, count, running, until


@pytest.mark.anyio
async def test_stored_then_hooked_in_arrival_order(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)
    seen: list[StoredMessage] = []

    async def hook(batch: Sequence[StoredMessage]) -> None:
        seen.extend(batch)

    ingest = Ingest(config(mosquitto, site), engine, Registry(engine), on_stored=hook)
    messages = [gw.telemetry(readings=5) for _ in range(50)]
    async with running(ingest):
        publisher.send([gw.frame(m) for m in messages])
        await until(lambda: count(engine, Reading.id) >= 250)
        await until(lambda: len(seen) >= 50)
    assert count(engine, Reading.id) == 250
    assert [s.message for s in seen] == messages
    assert not any(s.duplicate for s in seen)
    assert all(s.pending for s in seen)  # unknown gateway and devices: stored but flagged
    assert ingest.stats.acked == 50


@pytest.mark.anyio
async def test_duplicate_msg_id_acked_counted_not_stored_twice(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)
    msg = gw.telemetry(readings=3)
    ingest = Ingest(config(mosquitto, site), engine, Registry(engine))
    async with running(ingest):
        publisher.send([gw.frame(msg)] * 3)
        await until(lambda: ingest.stats.duplicates == 2)
        publisher.send([gw.frame(msg)])  # and again in a later batch
        await until(lambda: ingest.stats.duplicates == 3)
    assert count(engine, StoredEnvelope.id) == 1
    assert count(engine, Reading.id) == 3
    assert ingest.stats.acked == 4


@pytest.mark.anyio
async def test_row_id_is_the_stored_row_and_none_for_duplicates(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)
    seen: list[StoredMessage] = []

    async def hook(batch: Sequence[StoredMessage]) -> None:
        seen.extend(batch)

    ingest = Ingest(config(mosquitto, site, batch_size=7), engine, Registry(engine), hook)
    messages = [gw.telemetry() for _ in range(30)]
    async with running(ingest):
        publisher.send([gw.frame(m) for m in messages])
        await until(lambda: len(seen) >= 30)
        publisher.send([gw.frame(messages[3])])  # a redelivery: no row of its own
        await until(lambda: len(seen) >= 31)
    with Session(engine) as s:
        rows = {m: i for m, i in s.execute(select(StoredEnvelope.msg_id, StoredEnvelope.id))}
    assert [m.row_id for m in seen[:30]] == [rows[m.msg_id] for m in messages]
    assert [m.row_id for m in seen[:30]] == sorted({m.row_id for m in seen[:30] if m.row_id})
    assert seen[30].duplicate and seen[30].row_id is None


@pytest.mark.anyio
async def test_hook_failure_does_not_stop_ingest(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)

    async def broken(batch: Sequence[StoredMessage]) -> None:
        raise RuntimeError("consumer bug")

    ingest = Ingest(
        config(mosquitto, site, batch_size=1, linger_s=0), engine, Registry(engine), broken
    )
    async with running(ingest):
        publisher.send([gw.frame(gw.telemetry()) for _ in range(5)])
        await until(lambda: count(engine, Reading.id) == 5)
        await until(lambda: ingest.stats.hook_errors == 5)
    assert count(engine, DeadLetter.id) == 0


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["inprocess", "split"])
async def test_two_processes_in_a_shared_group_store_everything_once(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str, mode: str, tmp_path: Path
) -> None:
    """Split mode: each member has its own client id, receiver process and raw log."""
    gw = Gateway(site)
    common = {"shared_group": "ingest", "retry_backoff_s": 0.05, "batch_size": 20, "mode": mode}

    def member(name: str) -> Ingest:
        update = {"client_id": f"{name}-{site}", "rawlog_path": tmp_path / f"{name}.sqlite"}
        cfg = config(mosquitto, site, **common).model_copy(update=update)
        return Ingest(cfg, engine, Registry(engine))

    one, two = member("a"), member("b")
    async with running(one), running(two):
        publisher.send([gw.frame(gw.telemetry(readings=2)) for _ in range(300)])
        await until(lambda: count(engine, StoredEnvelope.id) == 300)
        await asyncio.sleep(0.5)
    assert count(engine, Reading.id) == 600
    assert one.stats.stored > 0 and two.stats.stored > 0  # the group split the stream
    assert one.stats.stored + two.stats.stored == 300
    with Session(engine) as s:
        # Out-of-order commits between the two may open gaps; every one must be closed again.
        assert gaps(s, site) == []

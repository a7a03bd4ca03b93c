"""Split ingest: a receiver process acks once a message is in the raw log; ingest expands it.

Real mosquitto, a real receiver process (``python -m cloud.ingest.receive``) and the main
database on SQLite and PostgreSQL (``engine``/``db_url``). The raw log itself is SQLite. The
whole cloud killed mid-stream: test_ingest_restart.py (parametrised by mode); dead letters
through the split path: test_ingest_rejects.py (likewise).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest
from sqlalchemy.engine import Engine

from cloud.ingest import Ingest, StoredMessage
from cloud.ingest.buffer import BoundedBuffer, Delivery
from cloud.ingest.config import IngestConfig
from cloud.ingest.rawlog import RawLog
from cloud.ingest.split import LogSource
from cloud.registry import Registry
from cloud.storage.tables import Reading, StoredEnvelope
from linli.services import Mosquitto
from protocols.messages import DeviceEvent, Telemetry
from protocols.topics import Channel, topic
from tests.cloud.ingest.ingest_support import Gateway, Publisher, config, count, running, until
from tests.cloud.ingest.test_ingest_restart import distinct_readings


def _delivery(n: int, urgent: bool = False) -> Delivery:
    return Delivery(f"t/{n}", b"x" * n, n, 1, datetime.now(UTC), urgent=urgent)


def test_rawlog_appends_reads_after_the_mark_and_truncates_below_it(tmp_path: Path) -> None:
    log = RawLog(tmp_path / "raw.sqlite")
    log.append([_delivery(n) for n in range(1, 11)])  # payloads of 1..10 bytes
    rows = log.read_after(0, 100)
    assert [r.id for r in rows] == list(range(1, 11))
    assert [r.payload for r in rows] == [b"x" * n for n in range(1, 11)]
    assert log.backlog().rows == 10 and log.backlog().bytes == 55
    log.advance(4)
    log.advance(2)  # the mark never moves back
    assert log.mark() == 4
    assert [r.id for r in log.read_after(log.mark(), 3)] == [5, 6, 7]
    assert (log.backlog().rows, log.backlog().bytes) == (6, 55 - 10)
    assert log.truncate(2) == 2  # bounded chunk: ids 1 and 2
    assert log.truncate(100) == 1  # id 3; the marked row stays (it measures the backlog)
    assert (log.backlog().rows, log.backlog().bytes) == (6, 45)
    log.advance(10)
    assert log.truncate(100) == 6
    log.close()
    # Every row but the marked one is gone; reopened, new ids continue after the old ones.
    log = RawLog(tmp_path / "raw.sqlite")
    log.append([_delivery(3, urgent=True)])
    [row] = log.read_after(log.mark(), 10)
    assert (row.id, row.urgent, row.cum) == (11, True, 58)
    assert log.urgent_after(0, 10) == [(11, "t/3")]
    assert log.backlog().rows == 1 and log.backlog().bytes == 3
    log.close()


@pytest.mark.anyio
async def test_split_stores_in_arrival_order_acks_and_settles(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)
    seen: list[StoredMessage] = []

    async def hook(batch: Sequence[StoredMessage]) -> None:
        seen.extend(batch)

    cfg = config(mosquitto, site, mode="split")
    ingest = Ingest(cfg, engine, Registry(engine), on_stored=hook)
    messages = [gw.telemetry(readings=5) for _ in range(50)]
    async with running(ingest):
        assert ingest.receiver is None and ingest.log_source is not None
        publisher.send([gw.frame(m) for m in messages])
        publisher.send([gw.frame(messages[0])])  # a redelivery: a duplicate, not stored
        await until(lambda: len(seen) >= 51)
        await until(lambda: ingest.settled, 10)
        status = ingest.receiver_status
        assert status is not None
        assert (status.received, status.appended) == (51, 51)
        assert ingest.queue_depth == 0
    assert [s.message for s in seen] == [*messages, messages[0]]
    assert [s.duplicate for s in seen] == [False] * 50 + [True]
    assert count(engine, Reading.id) == 250
    assert ingest.stats.acked == 51 and ingest.stats.duplicates == 1
    # Cancelling ingest stopped its receiver process, and the raw log, all stored, is gone.
    assert not cfg.rawlog_file().exists()
    assert ingest.log_source is not None
    pid = ingest.log_source.child_pid
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


@pytest.mark.anyio
async def test_receiver_killed_mid_stream_is_restarted_nothing_lost_nothing_doubled(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)
    total, per = 2000, 10
    frames = [gw.frame(gw.telemetry(readings=per)) for _ in range(total)]
    cfg = config(mosquitto, site, mode="split", batch_size=50, queue_bound=200)
    ingest = Ingest(cfg, engine, Registry(engine))
    async with running(ingest):
        source = ingest.log_source
        assert source is not None
        first_pid = source.child_pid
        sender = threading.Thread(target=publisher.send, args=(frames,))
        sender.start()
        await until(lambda: source.status.appended >= 200, 60)
        os.kill(first_pid, signal.SIGKILL)
        appended_at_kill = source.status.appended
        await asyncio.to_thread(sender.join, 120)
        await until(lambda: count(engine, StoredEnvelope.id) >= total, 120)
        await until(lambda: ingest.settled, 30)
        await asyncio.sleep(1.0)  # redelivered copies, if any, would land now
        assert source.process_starts >= 2 and source.child_pid != first_pid
    assert appended_at_kill < total, "the kill must land mid-stream"
    assert count(engine, StoredEnvelope.id) == total
    assert count(engine, Reading.id) == total * per
    assert distinct_readings(engine) == total * per


@pytest.mark.anyio
async def test_expander_behind_stops_the_receiver_at_the_budget_then_catches_up(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)
    total, budget, batch = 300, 40, 10
    release = asyncio.Event()

    async def stall(stored: Sequence[StoredMessage]) -> None:
        await release.wait()  # ingest stores nothing more until released

    cfg = config(
        mosquitto,
        site,
        mode="split",
        batch_size=batch,
        queue_bound=20,
        rawlog_budget_rows=budget,
    )
    ingest = Ingest(cfg, engine, Registry(engine), on_stored=stall)
    async with running(ingest):
        source = ingest.log_source
        assert source is not None
        publisher.send([gw.frame(gw.telemetry(readings=2)) for _ in range(total)])
        await until(lambda: source.status.paused >= 1, 30)
        await asyncio.sleep(1.0)  # it stays stopped
        held = source.status
        log = RawLog(cfg.rawlog_file())
        backlog = log.backlog()
        log.close()
        assert backlog.rows <= budget + batch
        assert held.appended <= count(engine, StoredEnvelope.id) + budget + batch
        assert held.acked < total  # the broker holds the rest, unacknowledged
        assert not ingest.settled  # acknowledged by the receiver is not stored
        release.set()
        await until(lambda: count(engine, StoredEnvelope.id) >= total, 60)
        await until(lambda: ingest.settled, 30)
    assert count(engine, StoredEnvelope.id) == total
    assert count(engine, Reading.id) == total * 2
    assert ingest.stats.duplicates == 0


@pytest.mark.anyio
async def test_urgent_message_overtakes_a_log_backlog_after_its_own_gateways_messages(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    bulk, alarm = Gateway(site, "gw-bulk"), Gateway(site, "gw-alarm")
    seen: list[StoredMessage] = []

    async def slow(batch: Sequence[StoredMessage]) -> None:
        seen.extend(batch)
        await asyncio.sleep(0.05)  # ingest expands ~400 messages/s: a backlog builds up

    # A small buffer: the backlog waits in the raw log, not in memory.
    cfg = config(mosquitto, site, mode="split", batch_size=20, queue_bound=40)
    ingest = Ingest(cfg, engine, Registry(engine), on_stored=slow)
    before = alarm.telemetry()
    event = alarm.event()
    async with running(ingest):
        publisher.send([bulk.frame(bulk.telemetry()) for _ in range(600)])
        publisher.send([alarm.frame(before)])
        publisher.send([alarm.frame(event, Channel.EVENT)])
        await until(lambda: any(isinstance(s.message, DeviceEvent) for s in seen), 30)
        bulk_before = sum(1 for s in seen if s.gateway == "gw-bulk")
        assert ingest.log_source is not None and ingest.log_source.ahead_rows >= 2
        await until(lambda: len(seen) >= 602, 60)
    assert bulk_before < 300, "the event waited for the backlog"
    alarm_seen = [s.message for s in seen if s.gateway == "gw-alarm"]
    assert alarm_seen == [before, event]  # its own gateway's order kept
    bulk_seqs = [
        s.message.seq for s in seen if s.gateway == "gw-bulk" and isinstance(s.message, Telemetry)
    ]
    assert bulk_seqs == list(range(600))
    assert count(engine, StoredEnvelope.id) == 602


def test_log_fast_lane_and_mark_without_a_broker(tmp_path: Path) -> None:
    """The reader alone (no receiver process): an urgent row deep in the log is handed over
    with its own gateway's earlier rows first; the mark only passes rows stored in order."""
    gw1, gw2 = (topic("s1", g, Channel.TELEMETRY) for g in ("gw1", "gw2"))
    alarm = topic("s1", "gw2", Channel.EVENT)
    layout = [gw1] * 6 + [gw2, gw1, alarm, gw1, gw1]  # ids 1..11; 9 is urgent
    path = tmp_path / "raw.sqlite"
    log = RawLog(path)
    log.append(
        [
            Delivery(t, str(i).encode(), 0, 1, datetime.now(UTC), urgent=t == alarm)
            for i, t in enumerate(layout, start=1)
        ]
    )
    buffer = BoundedBuffer(4, 1 << 20)
    source = LogSource(IngestConfig(mode="split", rawlog_path=path), buffer)
    source.start()
    try:
        deadline = time.monotonic() + 10
        while len(buffer) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        first = buffer.take(4, 0.0, 5.0)
        assert [d.mid for d in first] == [7, 9]  # gw2's telemetry, then its alarm
        assert [d.payload for d in first] == [b"7", b"9"] and first[1].urgent
        source.ack(first)
        time.sleep(0.1)
        assert log.mark() == 0  # 1..6 are not stored yet
        taken = [d.mid for d in first]
        while len(taken) < len(layout) and time.monotonic() < deadline:
            batch = buffer.take(4, 0.0, 1.0)
            taken += [d.mid for d in batch]
            source.ack(batch)
        assert taken == [7, 9, 1, 2, 3, 4, 5, 6, 8, 10, 11]
        while log.mark() < 11 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.mark() == 11 and source.ahead_rows == 2
    finally:
        source.stop()
        source.close()
        log.close()

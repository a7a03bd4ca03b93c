"""Ingest killed mid-stream and restarted with the same client id: nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest import Ingest, StoredMessage
from cloud.ingest.rawlog import RawLog
from cloud.registry import Registry
from cloud.storage.tables import Reading, Series, StoredEnvelope
from linli.services import Mosquitto
from tests.cloud.ingest.ingest_support import Gateway, Publisher, config, count, running, until

REPO = Path(__file__).resolve().parents[3]


def spawn_ingest(
    db_url: str, broker: Mosquitto, site: str, log: Path, *extra: str
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.ingest",
            "--db",
            db_url,
            "--port",
            str(broker.port),
            "--client-id",
            f"ingest-{site}",
            "--site",
            site,
            "--batch-size",
            "50",
            "--no-create-schema",
            *extra,
        ],
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def distinct_readings(engine: Engine) -> int:
    with Session(engine) as s:
        q = select(func.count()).select_from(
            select(Reading.message, Series.device)
            .join(Series, Series.id == Reading.series)
            .distinct()
            .subquery()
        )
        return int(s.scalar(q) or 0)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["inprocess", "split"])
def test_kill_9_mid_stream_then_restart_loses_and_doubles_nothing(
    engine: Engine, db_url: str, mosquitto: Mosquitto, site: str, tmp_path: Path, mode: str
) -> None:
    """Split mode: the whole cloud (ingest and its supervisor) is killed; its receiver process
    must stop by itself, and the restarted one reads the raw log from its mark."""
    gw = Gateway(site)
    total, per = 3000, 10
    frames = [gw.frame(gw.telemetry(readings=per)) for _ in range(total)]
    log, rawlog = tmp_path / "ingest.log", tmp_path / "raw.sqlite"
    extra = ("--mode", mode, "--rawlog", str(rawlog))
    first = spawn_ingest(db_url, mosquitto, site, log, *extra)
    publisher = Publisher(mosquitto.port)
    try:
        # Subscribe first: the session must exist before the stream starts.
        deadline = time.monotonic() + 20
        while " subscribed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        sender = threading.Thread(target=publisher.send, args=(frames,))
        sender.start()
        deadline = time.monotonic() + 60
        while count(engine, Reading.id) < 5000 and time.monotonic() < deadline:
            time.sleep(0.02)
        stored_at_kill = count(engine, Reading.id)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        assert 0 < stored_at_kill < total * per, "kill must land mid-stream"
        if mode == "split":
            reader = RawLog(rawlog)
            orphan = reader.status().pid
            reader.close()
            deadline = time.monotonic() + 20
            while not _gone(orphan) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert _gone(orphan), "the receiver must stop when its parent dies"
        sender.join(120)
        second = spawn_ingest(db_url, mosquitto, site, log, *extra)
        try:
            deadline = time.monotonic() + 120
            while count(engine, Reading.id) < total * per and time.monotonic() < deadline:
                time.sleep(0.1)
            time.sleep(1.0)  # any redelivered copies would land now
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
    finally:
        publisher.close()
        if first.poll() is None:
            first.kill()
    assert count(engine, StoredEnvelope.id) == total
    assert count(engine, Reading.id) == total * per
    assert distinct_readings(engine) == total * per


@pytest.mark.anyio
async def test_cancelled_without_ack_then_restarted_gets_the_rest(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    gw = Gateway(site)
    frames = [gw.frame(gw.telemetry(readings=4)) for _ in range(400)]
    cfg = config(mosquitto, site, batch_size=20, linger_s=0)
    batches = 0
    hooked: list[StoredMessage] = []
    stall = asyncio.Event()

    async def stall_after_five(batch: Sequence[StoredMessage]) -> None:
        nonlocal batches
        batches += 1
        hooked.extend(batch)
        if batches >= 5:
            await stall.wait()  # ingest stops taking batches; the rest stays unacknowledged

    first = Ingest(cfg, engine, Registry(engine), on_stored=stall_after_five)
    async with running(first):
        sender = threading.Thread(target=publisher.send, args=(frames,))
        sender.start()
        await until(lambda: batches >= 5)
        await asyncio.sleep(0.3)
    sender.join(60)
    # Stored = exactly what was committed before the stall; the rest was never acknowledged.
    assert count(engine, StoredEnvelope.id) == len(hooked) < 400
    second = Ingest(cfg, engine, Registry(engine))
    async with running(second):
        await until(lambda: count(engine, Reading.id) >= 1600)
        await until(lambda: second.buffer.nbytes == 0 and len(second.buffer) == 0)
    assert count(engine, StoredEnvelope.id) == 400
    assert count(engine, Reading.id) == 1600


@pytest.mark.anyio
async def test_broker_restart_mid_stream_loses_nothing(
    engine: Engine, own_mosquitto: Mosquitto, site: str
) -> None:
    gw = Gateway(site)
    cfg = config(own_mosquitto, site, batch_size=20).model_copy(update={"reconnect_max_s": 2})

    async def slow(batch: Sequence[StoredMessage]) -> None:
        await asyncio.sleep(0.2)  # keeps most of the first 100 waiting in the broker

    ingest = Ingest(cfg, engine, Registry(engine), on_stored=slow)
    async with running(ingest):
        publisher = Publisher(own_mosquitto.port)
        publisher.send([gw.frame(gw.telemetry(readings=3)) for _ in range(100)])
        publisher.close()
        await asyncio.to_thread(own_mosquitto.restart)
        assert count(engine, StoredEnvelope.id) < 100, "the restart must land mid-stream"
        publisher = Publisher(own_mosquitto.port)  # the gateway reconnects after the restart
        publisher.send([gw.frame(gw.telemetry(readings=3)) for _ in range(100)])
        publisher.close()
        await until(lambda: count(engine, StoredEnvelope.id) == 200)
        assert ingest.receiver is not None and ingest.receiver.connects >= 2
    assert count(engine, Reading.id) == 600

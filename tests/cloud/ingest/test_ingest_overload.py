"""Under a burst faster than ingest can store, memory stays bounded and nothing is dropped."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest
from sqlalchemy.engine import Engine

from cloud.ingest import Ingest, StoredMessage
from cloud.registry import Registry
from cloud.storage.tables import DeviceEventRow
from linli.services import Mosquitto
from tests.cloud.ingest.ingest_support import config, count, running, until

HERE = Path(__file__).resolve().parent
MESSAGES = 1500
PAYLOAD = 30_000  # bytes of attribute text per message: 45 MB in the burst
BOUND = 40


@pytest.mark.anyio
async def test_burst_is_held_by_the_broker_not_in_memory(
    engine: Engine, mosquitto: Mosquitto, site: str
) -> None:
    burst_bytes = MESSAGES * PAYLOAD

    async def slow(batch: Sequence[StoredMessage]) -> None:
        await asyncio.sleep(0.05)  # a consumer slower than the publisher

    cfg = config(mosquitto, site, batch_size=10, queue_bound=BOUND, linger_s=0.01)
    ingest = Ingest(cfg, engine, Registry(engine), on_stored=slow)
    process = psutil.Process()
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, process.memory_info().rss)
            stop.wait(0.01)

    async with running(ingest):
        await asyncio.sleep(0.5)
        baseline = process.memory_info().rss
        sampler = threading.Thread(target=sample)
        sampler.start()
        sender = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "burst_publisher.py"),
            str(mosquitto.port),
            site,
            "boot-0000000001",
            str(MESSAGES),
            str(PAYLOAD),
            cwd=HERE.parents[2],
            env={**os.environ, "PYTHONPATH": str(HERE.parents[2])},
        )
        try:
            await until(lambda: count(engine, DeviceEventRow.id) == MESSAGES, within=120)
        finally:
            stop.set()
            sampler.join()
        async with asyncio.timeout(60):
            assert await sender.wait() == 0
    growth = peak - baseline
    # The bound holds by count and bytes: at most BOUND messages waited in this process …
    assert ingest.buffer.high_water_items <= BOUND
    assert ingest.buffer.high_water_bytes <= BOUND * (PAYLOAD + 1000)
    # … and the process did not swallow the burst (it would grow by ~burst_bytes otherwise).
    assert growth < burst_bytes / 2, (
        f"RSS grew {growth / 1e6:.1f} MB for a {burst_bytes / 1e6:.0f} MB burst"
    )
    print(f"RSS growth {growth / 1e6:.1f} MB, buffer high water {ingest.buffer.high_water_items}")
    assert ingest.stats.stored == MESSAGES  # nothing dropped
    assert ingest.stats.duplicates == 0

"""Scale-out, demonstrated: several ingest processes on one broker and one PostgreSQL.

1. Two ``python -m cloud.ingest`` processes in one MQTT 5 shared-subscription group
   (``--shared-group``) split one stream: both get a share, and every reading is stored
   exactly once (dedup by msg_id is a unique constraint; gaps from interleaved commits close).
2. Sites partitioned over two processes by ``cloud.rules.runner.shard_of`` (no shared group):
   each process stores only its shard's sites, and every device's readings are stored in the
   order the gateway sent them, which is what a rules runner beside each ingest needs.
   See docs/scale-out.md.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.rules.runner import shard_of
from cloud.storage import gaps
from cloud.storage.tables import Reading, Series, StoredEnvelope
from linli.services import Mosquitto
from tests.chaos.chaos_support import Child, ingest_process, wait_until
from tests.cloud.ingest.ingest_support import Gateway, Publisher

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

STOPPED = re.compile(r"ingest stopped: IngestStats\(received=(\d+), stored=(\d+), duplicates=(\d+)")


@pytest.fixture
def engine(pg_engine: Engine) -> Engine:
    return pg_engine


def stored_count(engine: Engine, sites: list[str]) -> int:
    with Session(engine) as s:
        q = select(func.count(StoredEnvelope.id)).where(StoredEnvelope.site.in_(sites))
        return int(s.scalar(q) or 0)


def stats(child: Child) -> tuple[int, int, int]:
    """(received, stored, duplicates) from the process's last words on SIGTERM."""
    found = STOPPED.findall(child.log.read_text())
    assert found, f"no stats line in {child.log.name}:\n{child.tail()}"
    received, stored, duplicates = found[-1]
    return int(received), int(stored), int(duplicates)


def start_all(children: list[Child]) -> None:
    for child in children:
        child.start()
    for child in children:
        wait_until(lambda c=child: "connected to" in c.tail(), 30, "ingest connected", child)  # type: ignore[misc]
    time.sleep(1.0)  # the SUBSCRIBE went out before that log line; let the broker apply it


def publish(port: int, frames: list[tuple[str, bytes]]) -> None:
    publisher = Publisher(port)
    try:
        publisher.send(frames)
    finally:
        publisher.close()


def test_two_ingest_processes_in_a_shared_group_split_the_load(
    engine: Engine, pg_url: str, mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    gateways = [Gateway(site, f"gw{i}") for i in range(4)]
    per_gateway, readings = 500, 10
    frames = [
        gw.frame(gw.telemetry(readings=readings, value=float(n)))
        for n in range(per_gateway)
        for gw in gateways
    ]
    group = f"g{uuid.uuid4().hex[:8]}"
    children = [
        ingest_process(
            pg_url, mosquitto.port, site, f"{name}-{site}", tmp_path / f"{name}.log", group
        )
        for name in ("a", "b")
    ]
    try:
        start_all(children)
        # Two publishers at once, as gateways would be.
        half = len(frames) // 2
        senders = [
            threading.Thread(target=publish, args=(mosquitto.port, part))
            for part in (frames[:half], frames[half:])
        ]
        for t in senders:
            t.start()
        for t in senders:
            t.join(120)
        total = len(frames)
        wait_until(lambda: stored_count(engine, [site]) >= total, 120, "all stored", *children)
        time.sleep(1.0)  # any redelivered copy would land now
    finally:
        codes = [child.stop() for child in children]
    assert codes == [0, 0]
    shares = [stats(child) for child in children]
    assert all(stored > 0 for _, stored, _ in shares), f"one process got nothing: {shares}"
    assert sum(stored for _, stored, _ in shares) == total

    with Session(engine) as s:
        rows = s.execute(
            select(Series.gateway, Series.device, Reading.value)
            .join(Series, Series.id == Reading.series)
            .where(Series.site == site)
        ).all()
        open_gaps = gaps(s, site)
    identities = {(r.gateway, r.device, r.value) for r in rows}
    assert len(rows) == len(identities) == total * readings  # none lost, none doubled
    assert open_gaps == []


def partitioned_sites(count: int, shards: int) -> list[str]:
    """Fresh site ids, at least one per shard."""
    while True:
        sites = [f"t{uuid.uuid4().hex[:10]}" for _ in range(count)]
        if {shard_of(s, shards) for s in sites} == set(range(shards)):
            return sites


def test_sites_partitioned_over_processes_keep_each_devices_order(
    engine: Engine, pg_url: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sites = partitioned_sites(4, 2)
    shards: dict[int, list[str]] = defaultdict(list)
    for name in sites:
        shards[shard_of(name, 2)].append(name)
    children = []
    for index in range(2):
        child = ingest_process(
            pg_url,
            mosquitto.port,
            shards[index][0],
            f"shard{index}-{sites[0]}",
            tmp_path / f"shard{index}.log",
        )
        for extra in shards[index][1:]:
            child.argv += ["--site", extra]
        children.append(child)
    gateways = [Gateway(s, "gw1") for s in sites]
    per_gateway, readings = 300, 5
    frames = [
        gw.frame(gw.telemetry(readings=readings, value=float(n)))
        for n in range(per_gateway)
        for gw in gateways
    ]
    try:
        start_all(children)
        publish(mosquitto.port, frames)
        wait_until(lambda: stored_count(engine, sites) >= len(frames), 120, "all stored", *children)
        time.sleep(1.0)
    finally:
        codes = [child.stop() for child in children]
    assert codes == [0, 0]
    # Each process stored exactly the messages of its own shard's sites.
    for index, child in enumerate(children):
        _, stored, duplicates = stats(child)
        assert stored == per_gateway * len(shards[index]) and duplicates == 0

    with Session(engine) as s:
        rows = s.execute(
            select(Series.site, Series.device, Reading.value)
            .join(Series, Series.id == Reading.series)
            .where(Series.site.in_(sites))
            .order_by(Reading.id)
        ).all()
    assert len(rows) == len(frames) * readings
    # Row ids are commit order: each device's values arrive 0, 1, 2, … as sent.
    series: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in rows:
        series[(r.site, r.device)].append(r.value)
    assert len(series) == len(sites) * readings
    for key, values in series.items():
        assert values == [float(n) for n in range(per_gateway)], f"{key} out of order"

"""Chaos: 100,000 readings through a broker restart, three kill -9s and a PostgreSQL restart.

A real edge agent (subprocess) reads 100 counter devices (``tests/chaos/counter.py``) and sends
one telemetry message of 100 readings per read; a real ingest (subprocess) stores them in a
PostgreSQL server of this test's own. While the stream flows the test, in turn, stops the
broker and ``kill -9``s the agent during that outage (a new boot starts while still offline),
``kill -9``s the agent again with the broker up, ``kill -9``s ingest (and starts it again with
the same client id) and restarts PostgreSQL. Afterwards every reading is stored
exactly once, each boot's counter values are complete, each device's readings are in order by
event time and by sequence number, and the gap report is empty.
"""

from __future__ import annotations

import sqlite3
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from cloud.db import create_schema, make_engine
from cloud.storage import gaps
from cloud.storage.tables import GatewaySession, Reading, Series, StoredEnvelope
from linli.services import Mosquitto, Postgres
from protocols.codec import decode, encode, new_id
from protocols.messages import Envelope, Telemetry
from protocols.messages import Reading as WireReading
from protocols.topics import Channel, topic
from tests.chaos.chaos_support import (
    Child,
    agent_config,
    agent_process,
    ingest_process,
    wait_until,
)
from tests.chaos.counter import BOOT_SPAN
from tests.cloud.ingest.ingest_support import Publisher

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(420)]

READINGS = 100_000
DEVICES = 100  # one telemetry message = one read of every device = 100 readings
INTERVAL = 0.05  # 2,000 readings/s when the machine keeps up
GATEWAY = "gw-chaos"
SENTINEL_BOOT = "sentinel-boot"


@pytest.fixture
def chaos_pg() -> Iterator[Postgres]:
    """A PostgreSQL server of this test's own: it is restarted mid-stream."""
    with Postgres() as server:
        yield server


def stored(engine: Engine, site: str, last: list[int]) -> int:
    """Counter readings stored so far (the last known figure while the database is down)."""
    try:
        with Session(engine) as s:
            q = (
                select(func.count())
                .select_from(Reading)
                .join(Series, Series.id == Reading.series)
                .where(Series.site == site)
                .where(Series.device.like("c-%"))
            )
            last[0] = int(s.scalar(q) or 0)
    except OperationalError:
        engine.dispose()
    return last[0]


def outbox_seqs(db: Path, site: str) -> dict[str, list[int]]:
    """boot id → seq numbers of the messages left in the agent's outbox (read after kill -9)."""
    out: dict[str, list[int]] = defaultdict(list)
    with sqlite3.connect(db) as conn:
        for channel, payload in conn.execute("SELECT channel, payload FROM outbox"):
            # Rows hold the encoded message, zlib-compressed (older outboxes: plain JSON).
            raw = payload if payload[:1] == b"{" else zlib.decompress(payload)
            msg = decode(topic(site, GATEWAY, Channel(channel)), raw).message
            assert isinstance(msg, Envelope)
            out[msg.boot_id].append(msg.seq)
    return out


def sentinel_message() -> Telemetry:
    now = datetime.now(UTC)
    return Telemetry(
        msg_id=new_id(),
        boot_id=SENTINEL_BOOT,
        seq=0,
        ts=now,
        readings=(WireReading(device="sentinel", metric="temperature", value=0.0, ts=now),),
    )


def has_message(engine: Engine, msg_id: str) -> bool:
    try:
        with Session(engine) as s:
            q = select(StoredEnvelope.id).where(StoredEnvelope.msg_id == msg_id)
            return s.scalar(q) is not None
    except OperationalError:
        engine.dispose()
        return False


def test_stream_survives_broker_restart_kill9_and_postgres_restart(
    chaos_pg: Postgres, own_mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    broker = own_mosquitto
    db_url = chaos_pg.create_database("chaos")
    engine = make_engine(db_url)
    create_schema(engine)
    state = tmp_path / "edge-state"
    ingest = ingest_process(db_url, broker.port, site, f"chaos-{site}", tmp_path / "ingest.log")
    conf = tmp_path / "edge.yaml"

    def boot(n: int) -> Child:
        agent_config(
            conf,
            site=site,
            gateway=GATEWAY,
            port=broker.port,
            state_dir=state,
            devices=DEVICES,
            interval=INTERVAL,
            base=n * BOOT_SPAN,
        )
        child = agent_process(conf, tmp_path / "agent.log")
        child.start()
        return child

    last = [0]
    agent = Child([], tmp_path / "agent.log")
    children = [ingest]
    marks: dict[str, int] = {}

    def reach(n: int, what: str) -> None:
        wait_until(lambda: stored(engine, site, last) >= n, 150, what, agent, ingest)
        marks[what] = last[0]

    try:
        ingest.start()
        wait_until(lambda: "connected to" in ingest.tail(), 30, "ingest subscribed", ingest)
        agent = boot(0)
        children.append(agent)

        # The broker goes down; in the middle of the outage the agent is killed, so the
        # messages made since are on its disk only, and a new boot starts while still offline.
        reach(10_000, "broker restart, agent kill -9 in the outage")
        broker.stop()
        time.sleep(2.0)
        agent.kill9()
        at_kill = [outbox_seqs(state / "edge.db", site)]
        agent = boot(1)
        children.append(agent)
        time.sleep(3.0)
        broker.start()

        # kill -9 with the broker up: published, unacknowledged messages are sent again.
        reach(30_000, "agent kill -9")
        agent.kill9()
        at_kill.append(outbox_seqs(state / "edge.db", site))
        agent = boot(2)
        children.append(agent)

        reach(50_000, "ingest kill -9")
        ingest.kill9()
        time.sleep(2.0)
        ingest.start()

        reach(70_000, "postgres restart")
        chaos_pg.stop()
        time.sleep(3.0)
        chaos_pg.start()

        reach(READINGS, f"{READINGS} readings")
        assert agent.stop() == 0, f"agent did not drain and exit cleanly:\n{agent.tail()}"

        # Everything the agent made is now at the broker (its outbox drained). A sentinel
        # published after it on the same topic is stored only after all of it: ingest gets one
        # topic's messages in order and commits its batches in order.
        sentinel = sentinel_message()
        publisher = Publisher(broker.port)
        try:
            publisher.send([(topic(site, GATEWAY, Channel.TELEMETRY), encode(sentinel))])
        finally:
            publisher.close()
        wait_until(lambda: has_message(engine, sentinel.msg_id), 120, "sentinel stored", ingest)
        assert ingest.alive(), f"ingest died:\n{ingest.tail()}"
    finally:
        for child in children:
            child.stop()

    try:
        check(engine, site, at_kill, marks)
    finally:
        engine.dispose()


def check(
    engine: Engine, site: str, at_kill: list[dict[str, list[int]]], marks: dict[str, int]
) -> None:
    with Session(engine) as s:
        rows = s.execute(
            select(
                Reading.id,
                Series.device,
                Reading.value,
                Reading.ts,
                StoredEnvelope.boot_id,
                StoredEnvelope.seq,
            )
            .join(StoredEnvelope, StoredEnvelope.id == Reading.message)
            .join(Series, Series.id == Reading.series)
            .where(Series.site == site)
            .where(Series.device.like("c-%"))
        ).all()
        sessions = {
            b.boot_id: b
            for b in s.scalars(select(GatewaySession).where(GatewaySession.site == site))
            if b.boot_id != SENTINEL_BOOT
        }
        envelope_seqs: dict[str, list[int]] = defaultdict(list)
        for boot_id, seq in s.execute(
            select(StoredEnvelope.boot_id, StoredEnvelope.seq)
            .where(StoredEnvelope.site == site)
            .where(StoredEnvelope.boot_id != SENTINEL_BOOT)
        ):
            envelope_seqs[boot_id].append(seq)
        open_gaps = gaps(s, site)

    # Every event happened before the stream's end, while readings were still arriving.
    assert len(marks) == 5 and max(marks.values()) <= len(rows)
    assert len(rows) >= READINGS

    # Exactly once: (device, counter value) is each reading's identity.
    identities = [(r.device, r.value) for r in rows]
    assert len(set(identities)) == len(identities), "a reading was stored twice"

    # Complete: each device's values of each boot run base, base+1, … with no hole.
    per_device: dict[tuple[str, int], list[int]] = defaultdict(list)
    for r in rows:
        per_device[(r.device, int(r.value) // BOOT_SPAN)].append(int(r.value))
    assert {boot for _, boot in per_device} == {0, 1, 2}, "expected two killed boots and a third"
    assert len({d for d, _ in per_device}) == DEVICES
    for (device, boot), values in per_device.items():
        values.sort()
        base = boot * BOOT_SPAN
        assert values == list(range(base, base + len(values))), f"{device} boot {boot} has holes"

    # What each killed boot left in its outbox (on disk only) was delivered by the next boot.
    outage_left = sum(len(seqs) for seqs in at_kill[0].values())
    assert outage_left >= 10, "the first kill landed in the outage, with messages on disk only"
    for left in at_kill:
        for boot_id, seqs in left.items():
            assert sessions[boot_id].max_seq >= max(seqs)

    # Every boot's sequence numbers are complete, and the gap report is empty.
    assert len(sessions) == 3
    for boot_id, seqs in envelope_seqs.items():
        assert sorted(seqs) == list(range(max(seqs) + 1)), f"seq gap in boot {boot_id}"
        assert sessions[boot_id].max_seq == max(seqs)
    assert open_gaps == [], f"gap report not empty: {open_gaps}"

    # Per-device order: in counter order, event time and (boot, seq) only go up.
    boot_order = sorted(sessions, key=lambda b: sessions[b].first_seen)
    by_device: dict[str, list[tuple[float, float, int, int]]] = defaultdict(list)
    for r in rows:
        by_device[r.device].append(
            (float(r.value), r.ts.timestamp(), boot_order.index(r.boot_id), r.seq)
        )
    for device, items in by_device.items():
        items.sort()
        times = [t for _, t, _, _ in items]
        order = [(b, q) for _, _, b, q in items]
        assert all(a < b for a, b in pairwise(times)), f"{device}: event time out of counter order"
        assert all(a < b for a, b in pairwise(order)), f"{device}: sequence out of counter order"

    # And in the order stored (row ids follow commits): what a rules runner fed by ingest's
    # on_stored sees. Replays, redeliveries and retries must not reorder a device.
    arrival: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in rows:
        arrival[r.device].append((r.id, float(r.value)))
    for device, stored_rows in arrival.items():
        stored_rows.sort()
        in_order = [v for _, v in stored_rows]
        assert in_order == sorted(in_order), f"{device}: stored out of order"

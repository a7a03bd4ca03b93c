"""Ingest throughput beside a bare subscriber on the same MQTT client library and broker.

    .venv/bin/python -m bench.ingest [--messages 20000] [--readings 20] [--db URL]

Both consumers drain the same backlog: each first creates its persistent session (subscribe,
disconnect), then a publisher process fills the broker with ``--messages`` telemetry messages
of ``--readings`` readings each, then the consumer connects and is timed from its first
message to its last. The baseline is a bare paho QoS1 subscriber (MQTT 5, persistent session,
counting only, automatic acks). Ingest is :class:`cloud.ingest.Ingest`: decode, validate,
dedup, registry admit, gap tracking, one transaction per batch, acknowledge after commit.
The database defaults to a fresh SQLite file (WAL). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.db import create_schema, make_engine
from cloud.ingest import Ingest, IngestConfig
from cloud.registry import Registry
from linli.services import Mosquitto
from protocols.codec import encode, new_id
from protocols.messages import Reading, Telemetry
from protocols.topics import Channel, topic, topic_filter

GATEWAYS = 10


def publish(port: int, site: str, messages: int, readings: int) -> None:
    """Publisher process: ``messages`` telemetry messages spread over GATEWAYS gateways."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{new_id()[:8]}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    boots = [new_id() for _ in range(GATEWAYS)]
    t0 = datetime.now(UTC)
    infos = []
    for i in range(messages):
        g = i % GATEWAYS
        ts = t0 + timedelta(milliseconds=i)
        msg = Telemetry(
            msg_id=new_id(),
            boot_id=boots[g],
            seq=i // GATEWAYS,
            ts=ts,
            readings=tuple(
                Reading(device=f"g{g}-d{k}", metric="temperature", value=20 + k / 10, ts=ts)
                for k in range(readings)
            ),
        )
        infos.append(client.publish(topic(site, f"gw{g}", Channel.TELEMETRY), encode(msg), qos=1))
        if len(infos) >= 5000:
            for info in infos:
                info.wait_for_publish(60)
            infos.clear()
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def fill_backlog(port: int, site: str, messages: int, readings: int) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest",
            "--publish",
            str(port),
            site,
            str(messages),
            str(readings),
        ],
        check=True,
    )
    return time.monotonic() - started


class BareSubscriber:
    """paho, MQTT 5, persistent session, QoS1 with automatic acks; counts messages."""

    def __init__(self, port: int, site: str, expect: int) -> None:
        self.port, self.expect, self.count = port, expect, 0
        self.first = self.last = 0.0
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bare-{site}", protocol=paho.MQTTv5
        )
        filters = [(topic_filter(c, site), 1) for c in (Channel.TELEMETRY,)]
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(filters)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        now = time.monotonic()
        if self.count == 0:
            self.first = now
        self.count += 1
        self.last = now
        if self.count >= self.expect:
            self.done.set()

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 3600
        props.ReceiveMaximum = 1000
        self.client.connect("127.0.0.1", self.port, clean_start=False, properties=props)
        self.client.loop_start()
        self.subscribed.wait(10)

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.subscribed.clear()


def bench_bare(port: int, messages: int, readings: int) -> dict[str, float]:
    site = f"bare{new_id()[:6]}"
    sub = BareSubscriber(port, site, messages)
    sub.connect()  # create the session
    sub.disconnect()
    fill = fill_backlog(port, site, messages, readings)
    sub.connect()
    if not sub.done.wait(300):
        raise RuntimeError(f"bare subscriber got {sub.count}/{messages}")
    sub.disconnect()
    seconds = sub.last - sub.first
    return {"seconds": seconds, "messages_per_s": messages / seconds, "fill_s": fill}


async def _run_ingest(ingest: Ingest, until_stored: int | None) -> tuple[float, float]:
    task = asyncio.create_task(ingest.run())
    try:
        async with asyncio.timeout(30):
            await ingest.wait_subscribed()
        if until_stored is None:
            return 0.0, 0.0
        first = 0.0
        async with asyncio.timeout(600):
            while ingest.stats.stored + ingest.stats.duplicates < until_stored:
                if first == 0.0 and (ingest.stats.received or ingest.queue_depth):
                    first = time.monotonic()
                await asyncio.sleep(0.005)
        return first, time.monotonic()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def bench_ingest(port: int, messages: int, readings: int, db_url: str) -> dict[str, Any]:
    site = f"ing{new_id()[:6]}"
    engine = make_engine(db_url)
    create_schema(engine)
    config = IngestConfig(port=port, client_id=f"ingest-{site}", sites=(site,))
    asyncio.run(_run_ingest(Ingest(config, engine, Registry(engine)), None))  # the session
    fill = fill_backlog(port, site, messages, readings)
    ingest = Ingest(config, engine, Registry(engine))
    first, last = asyncio.run(_run_ingest(ingest, messages))
    engine.dispose()
    seconds = last - first
    return {
        "seconds": seconds,
        "messages_per_s": messages / seconds,
        "points_per_s": messages * readings / seconds,
        "batches": ingest.stats.batches,
        "stored": ingest.stats.stored,
        "readings": ingest.stats.readings,
        "fill_s": fill,
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--publish":
        publish(int(argv[1]), argv[2], int(argv[3]), int(argv[4]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    p.add_argument("--messages", type=int, default=20_000)
    p.add_argument("--readings", type=int, default=20, help="readings per message")
    p.add_argument("--db", help="SQLAlchemy URL (default: a fresh SQLite file)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp, Mosquitto() as broker:
        db_url = args.db or f"sqlite:///{Path(tmp) / 'bench.db'}"
        bare = bench_bare(broker.port, args.messages, args.readings)
        ingest = bench_ingest(broker.port, args.messages, args.readings, db_url)
    result = {
        "benchmark": "ingest",
        "messages": args.messages,
        "readings_per_message": args.readings,
        "database": db_url.split(":", 1)[0],
        "ingest": ingest,
        "bare_subscriber": bare,
        "ratio_messages_vs_bare": ingest["messages_per_s"] / bare["messages_per_s"],
        "targets": {"points_per_s": 50_000, "ratio_messages_vs_bare": 0.8},
        "units": {"seconds": "s", "messages_per_s": "msg/s", "points_per_s": "readings/s"},
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Outbox replay rate after an outage: how fast a gateway empties its backlog once the link is back.

    .venv/bin/python -m bench.outbox_replay [--messages 4000] [--readings 50]

Fills an edge agent's outbox with telemetry made "during an outage", starts a real mosquitto and
a QoS1 subscriber, starts the agent and times until every row is acknowledged and deleted, and
until the subscriber has every message. Baseline, measured in the same run: a bare paho client
publishing the same payloads QoS1 from memory (no SQLite, no agent), with the same in-flight
cap. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import EdgeAgent
from edge.config import parse_config
from edge.envelope import Stamper
from edge.outbox import Outbox
from linli.services import Mosquitto
from protocols.codec import encode
from protocols.messages import Reading, Telemetry
from protocols.topics import Channel, topic, topic_filter

SITE = "bench"
GATEWAY = "gw-replay"


class Counter:
    """A paho QoS1 subscriber that counts messages on a filter."""

    def __init__(self, port: int, filter_: str) -> None:
        self.count = 0
        self.historical = 0
        self.done = threading.Event()
        self.expect = 0
        self._ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.time_ns()}")
        self.client.max_inflight_messages_set(1000)

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            c.subscribe(filter_, 1)

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any) -> None:
            self._ready.set()

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            self.count += 1
            if b'"historical":true' in msg.payload:
                self.historical += 1
            if self.expect and self.count >= self.expect:
                self.done.set()

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port, 60)
        self.client.loop_start()
        if not self._ready.wait(10):
            raise TimeoutError("subscriber not ready")

    def reset(self, expect: int) -> None:
        self.count = 0
        self.historical = 0
        self.expect = expect
        self.done.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def make_backlog(n_messages: int, n_readings: int) -> list[Telemetry]:
    stamper = Stamper()
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    out = []
    for i in range(n_messages):
        ts = t0 + timedelta(seconds=i * 0.1)
        readings = tuple(
            Reading(
                device=f"t-{j:03d}", metric="temperature", value=20.0 + j / 10, unit="°C", ts=ts
            )
            for j in range(n_readings)
        )
        out.append(stamper.stamp(Telemetry, ts=ts, readings=readings))
    return out


def baseline(port: int, payloads: list[bytes], counter: Counter, max_inflight: int) -> float:
    """Bare paho, QoS1, same payloads and in-flight cap: seconds until all acked and received."""
    counter.reset(len(payloads))
    acked = threading.Semaphore(0)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-base-{time.time_ns()}")
    client.max_inflight_messages_set(100)
    client.on_publish = lambda c, u, mid, rc, p: acked.release()
    client.connect("127.0.0.1", port, 60)
    client.loop_start()
    name = topic(SITE, "gw-baseline", Channel.TELEMETRY)
    start = time.perf_counter()
    inflight = 0
    for payload in payloads:
        if inflight >= max_inflight:
            acked.acquire()
            inflight -= 1
        client.publish(name, payload, qos=1)
        inflight += 1
    for _ in range(inflight):
        acked.acquire()
    counter.done.wait(120)
    elapsed = time.perf_counter() - start
    client.disconnect()
    client.loop_stop()
    return elapsed


async def poll(done: Callable[[], bool], within: float = 120.0) -> None:
    """Check ``done`` every 5 ms (it is set by other threads, so there is no event to await)."""
    deadline = time.perf_counter() + within
    while not done() and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def replay(
    state: Path, port: int, counter: Counter, n: int, max_inflight: int
) -> dict[str, float]:
    config = parse_config(
        {
            "site": SITE,
            "gateway": GATEWAY,
            "state_dir": str(state),
            "broker": {"port": port},
            "outbox": {"synchronous": "full", "max_inflight": max_inflight},
            "health": {"interval": 3600},
            "rules": {"enabled": False},
        }
    )
    counter.reset(n + 1)  # + the agent's own health report
    agent = EdgeAgent(config)
    async with agent:
        task = asyncio.create_task(agent.run())
        await agent.uplink.wait_connected()
        start = time.perf_counter()
        await poll(lambda: agent.outbox.depth == 0 and not agent.sender.inflight)
        drained = time.perf_counter() - start
        await poll(counter.done.is_set)
        received = time.perf_counter() - start
        agent.stop()
        await task
    return {"drained_s": drained, "received_s": received}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.outbox_replay")
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--readings", type=int, default=50, help="readings per message")
    parser.add_argument("--max-inflight", type=int, default=1000)
    args = parser.parse_args(argv)

    backlog = make_backlog(args.messages, args.readings)
    payloads = [encode(m) for m in backlog]
    with tempfile.TemporaryDirectory(prefix="linli-bench-") as tmp, Mosquitto() as broker:
        state = Path(tmp) / "state"
        box = Outbox.open(state / "edge.db", 10**10, clock=lambda: time.time() - 600)
        fill_start = time.perf_counter()
        for i in range(0, len(backlog), 100):
            box.put_many(backlog[i : i + 100])
        fill = time.perf_counter() - fill_start
        disk = box.used_bytes()
        box.close()
        counter = Counter(broker.port, topic_filter(None, SITE))
        try:
            base_s = baseline(broker.port, payloads, counter, args.max_inflight)
            result = asyncio.run(
                replay(state, broker.port, counter, len(backlog), args.max_inflight)
            )
            historical = counter.historical
        finally:
            counter.close()
    readings = args.messages * args.readings
    out = {
        "bench": "outbox_replay",
        "messages": args.messages,
        "readings_per_message": args.readings,
        "readings": readings,
        "payload_bytes_avg": round(sum(map(len, payloads)) / len(payloads)),
        "max_inflight": args.max_inflight,
        "replay_readings_per_s": round(readings / result["received_s"]),
        "replay_messages_per_s": round(args.messages / result["received_s"]),
        "replay_seconds": round(result["received_s"], 3),
        "outbox_drained_seconds": round(result["drained_s"], 3),
        "replayed_marked_historical": historical,
        "baseline_bare_paho_readings_per_s": round(readings / base_s),
        "baseline_seconds": round(base_s, 3),
        "replay_vs_baseline": round(base_s / result["received_s"], 3),
        "outbox_fill_readings_per_s": round(readings / fill),
        "outbox_disk_bytes_per_reading": round(disk / readings, 1),
        "units": {"rates": "per second, wall clock", "seconds": "s"},
        "note": "broker, subscriber and agent share this machine's cores",
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

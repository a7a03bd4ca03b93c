"""Helpers for tests that run edge agents: a config, a real subscriber, a running agent.

Used by tests/edge and by anyone embedding the agent (the simulators). Needs a broker on
127.0.0.1; nothing here fakes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.agent import EdgeAgent
from edge.config import EdgeConfig, parse_config
from protocols.codec import Decoded, decode
from protocols.topics import Channel, topic


class HasPort(Protocol):
    port: int


def edge_config(
    tmp_path: Path, server: HasPort, site: str, gateway: str = "gw1", **overrides: Any
) -> EdgeConfig:
    """A config for a test agent: its own state dir, the given broker, fast reconnects."""
    data: dict[str, Any] = {
        "site": site,
        "gateway": gateway,
        "state_dir": str(tmp_path / f"state-{gateway}"),
        "broker": {
            "port": server.port,
            "reconnect_min": 0.1,
            "reconnect_max": 1.0,
            "keepalive": 5,
        },
        "outbox": {"synchronous": "normal", "drain_timeout": 2.0},
        "health": {"interval": 3600},
        "rules": {"enabled": False},
        "restart": {"initial": 0.05, "maximum": 0.5},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(data)


class Subscriber:
    """A real paho subscriber (QoS1, persistent session) that decodes what it receives."""

    def __init__(
        self,
        broker: HasPort,
        filters: list[str],
        *,
        client_id: str | None = None,
    ) -> None:
        self.messages: list[Decoded] = []
        self.raw: list[tuple[str, bytes, bool]] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"test-sub-{id(self)}",
            protocol=mqtt.MQTTv311,
            clean_session=False,
        )
        self.client.reconnect_delay_set(1, 2)
        self.client.max_inflight_messages_set(1000)
        self._subscribed = threading.Event()
        self.filters = filters

        def on_connect(c: mqtt.Client, u: Any, f: Any, rc: Any, p: Any) -> None:
            c.subscribe([(flt, 1) for flt in filters])

        def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: Any, p: Any) -> None:
            self._subscribed.set()

        def on_message(c: mqtt.Client, u: Any, msg: mqtt.MQTTMessage) -> None:
            payload = bytes(msg.payload)
            with self._lock:
                self.raw.append((msg.topic, payload, msg.retain))
                try:
                    self.messages.append(decode(msg.topic, payload))
                except ValueError as exc:
                    self.errors.append(str(exc))

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", broker.port, 30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise TimeoutError("subscriber did not subscribe")

    def snapshot(self, channel: Channel | None = None) -> list[Decoded]:
        with self._lock:
            items = list(self.messages)
        return [d for d in items if channel is None or d.topic.channel is channel]

    def wait_for(
        self, predicate: Callable[[list[Decoded]], bool], within: float = 20.0
    ) -> list[Decoded]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            items = self.snapshot()
            if predicate(items):
                return items
            time.sleep(0.05)
        raise AssertionError(f"condition not met in {within}s; got {len(self.snapshot())} msgs")

    async def await_for(
        self, predicate: Callable[[list[Decoded]], bool], within: float = 20.0
    ) -> list[Decoded]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            items = self.snapshot()
            if predicate(items):
                return items
            await asyncio.sleep(0.05)
        raise AssertionError(f"condition not met in {within}s; got {len(self.snapshot())} msgs")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_downlink(
    broker: HasPort,
    site: str,
    gateway: str,
    channel: Channel,
    payload: bytes,
    *,
    retain: bool = False,
) -> None:
    """Publish one cloud → gateway message (QoS1) and wait for the broker's ack."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-cloud-{time.monotonic_ns()}")
    client.connect("127.0.0.1", broker.port, 30)
    client.loop_start()
    try:
        info = client.publish(topic(site, gateway, channel), payload, qos=1, retain=retain)
        info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@contextlib.asynccontextmanager
async def running(agent: EdgeAgent) -> AsyncIterator[EdgeAgent]:
    """Open the agent and run it in the background for the body of the ``async with``."""
    async with agent:
        task = asyncio.create_task(agent.run(), name="agent")
        try:
            yield agent
        finally:
            agent.stop()
            try:
                await asyncio.wait_for(task, 15)
            except TimeoutError:
                task.cancel()
                raise


async def until(
    predicate: Callable[[], bool], within: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} not met in {within}s")

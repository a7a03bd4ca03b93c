"""Helpers for ingest tests: a real publisher, a gateway message maker, a task runner."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import tempfile
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import InstrumentedAttribute, Session

from cloud.ingest import Ingest, IngestConfig
from linli.services import Mosquitto
from protocols.codec import encode, new_id
from protocols.messages import DeviceEvent, EventPriority, Model, Reading, Telemetry
from protocols.topics import Channel, topic

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


class Publisher:
    """A plain paho QoS1 publisher that caps the messages in flight (paho fails past ~65k)."""

    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{new_id()[:8]}")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, items: list[tuple[str, bytes]], retain: bool = False) -> None:
        infos = []
        for t, payload in items:
            infos.append(self.client.publish(t, payload, qos=1, retain=retain))
            if len(infos) >= 2000:
                for info in infos:
                    info.wait_for_publish(30)
                infos.clear()
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Gateway:
    """Makes a gateway's uplink messages with a real boot id and consecutive sequence numbers."""

    def __init__(self, site: str, gateway: str = "gw1") -> None:
        self.site = site
        self.gateway = gateway
        self.boot_id = new_id()
        self._seq = itertools.count()

    def topic(self, channel: Channel = Channel.TELEMETRY) -> str:
        return topic(self.site, self.gateway, channel)

    def telemetry(
        self, readings: int = 1, device: str = "d1", historical: bool = False, value: float = 1.0
    ) -> Telemetry:
        seq = next(self._seq)
        ts = T0 + timedelta(seconds=seq)
        return Telemetry(
            msg_id=new_id(),
            boot_id=self.boot_id,
            seq=seq,
            ts=ts,
            historical=historical,
            readings=tuple(
                Reading(
                    device=f"{device}-{i}" if readings > 1 else device,
                    metric="temperature",
                    value=value,
                    ts=ts,
                )
                for i in range(readings)
            ),
        )

    def event(self, device: str = "smoke-1", event: str = "smoke.alarm") -> DeviceEvent:
        """A safety event, numbered in the same sequence as the gateway's telemetry."""
        seq = next(self._seq)
        return DeviceEvent(
            msg_id=new_id(),
            boot_id=self.boot_id,
            seq=seq,
            ts=T0 + timedelta(seconds=seq),
            device=device,
            event=event,
            priority=EventPriority.SAFETY,
        )

    def frame(self, message: Model, channel: Channel = Channel.TELEMETRY) -> tuple[str, bytes]:
        return self.topic(channel), encode(message)


def count(engine: Engine, column: InstrumentedAttribute[Any]) -> int:
    with Session(engine) as s:
        return int(s.scalar(select(func.count(column))) or 0)


def config(broker: Mosquitto, site: str, **kw: Any) -> IngestConfig:
    """Ingest reading only this test's site, with a client id of its own (split mode: and a
    raw log of its own in the temporary directory)."""
    if kw.get("mode") == "split":
        kw.setdefault("rawlog_path", Path(tempfile.gettempdir()) / f"linli-rawlog-{site}.sqlite")
    return IngestConfig(port=broker.port, client_id=f"ingest-{site}", sites=(site,), **kw)


@contextlib.asynccontextmanager
async def running(ingest: Ingest) -> AsyncIterator[asyncio.Task[None]]:
    """Run ingest as a task until the block ends, then cancel it (no acks for unstored data)."""
    task = asyncio.create_task(ingest.run(), name="ingest")
    try:
        async with asyncio.timeout(10):
            await ingest.wait_subscribed()
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(predicate: Callable[[], bool], within: float = 30.0) -> None:
    """Poll ``predicate()`` (run in a thread: it may query the database) until true."""
    async with asyncio.timeout(within):
        while not await asyncio.to_thread(predicate):  # noqa: ASYNC110  (polls a database)
            await asyncio.sleep(0.05)

"""The cloud's MQTT publisher (aiomqtt): commands on ``cmd``, retained configs on ``config``.

A bounded queue feeds one connection that reconnects with capped, jittered backoff; a message
is taken off the queue only after the broker accepted it (QoS1 PUBACK), so a broker restart
delays commands instead of losing them.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import aiomqtt

from cloud.notify.loop import LoopBound
from protocols.codec import channel_of, encode
from protocols.messages import Command, GatewayConfig
from protocols.topics import topic

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    retain: bool


class PublishQueueFull(RuntimeError):
    pass


class Publisher(LoopBound):
    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        username: str | None = None,
        password: str | None = None,
        queue_size: int = 10_000,
        reconnect_max_s: float = 30.0,
        protocol: str = "5",
    ) -> None:
        super().__init__()
        self.protocol = protocol
        self.host = host
        self.port = port
        self.client_id = client_id
        self.username = username
        self.password = password
        self.reconnect_max_s = reconnect_max_s
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(queue_size)
        self.connected = asyncio.Event()
        self.published = 0
        self.reconnects = 0
        self.lost = 0

    def send(self, site: str, gateway: str, message: Command | GatewayConfig) -> None:
        """Queue a downlink message for one gateway (topic built by protocols.topics)."""
        channel = channel_of(message)
        self.put(Outgoing(topic(site, gateway, channel), encode(message), channel.retained))

    def put(self, item: Outgoing) -> None:
        """Queue one message; from another thread it is handed to the loop (never blocks)."""
        if self._queue.full():
            raise PublishQueueFull(f"{self._queue.maxsize} messages waiting for the broker")
        self._in_loop(lambda: self._put_now(item))

    def _put_now(self, item: Outgoing) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.lost += 1
            log.error("publisher queue full: message to %s lost", item.topic)

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """Connect, publish, reconnect on failure; runs until cancelled."""
        delay = 0.5
        while True:
            try:
                async with aiomqtt.Client(
                    self.host,
                    self.port,
                    identifier=self.client_id,
                    username=self.username,
                    password=self.password,
                    protocol=(
                        aiomqtt.ProtocolVersion.V5
                        if self.protocol == "5"
                        else aiomqtt.ProtocolVersion.V311
                    ),
                    timeout=10,
                ) as client:
                    self.connected.set()
                    delay = 0.5
                    while True:
                        item = await self._queue.get()
                        try:
                            await client.publish(
                                item.topic, item.payload, qos=1, retain=item.retain
                            )
                        except aiomqtt.MqttError:
                            self._requeue(item)
                            raise
                        self.published += 1
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                self.reconnects += 1
                wait = min(delay, self.reconnect_max_s) * (0.5 + random.random() / 2)
                log.warning("publisher %s: %s; reconnecting in %.1fs", self.client_id, exc, wait)
                await asyncio.sleep(wait)
                delay *= 2

    def _requeue(self, item: Outgoing) -> None:
        # Keep it: it goes out again after the reconnect (commands are idempotent by cmd_id).
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            log.error("publisher queue full: message to %s lost", item.topic)

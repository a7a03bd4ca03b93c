"""The MQTT uplink: a paho client whose network loop runs in its own thread.

paho calls back on its network thread; every callback here does nothing but hand the event to
the agent's asyncio loop with ``call_soon_threadsafe``, so all agent state is touched from one
thread only. The client is made with ``reconnect_on_failure=False``: when a connection drops,
paho's thread ends and :meth:`Uplink.run` (an asyncio task) reconnects after a capped,
jittered backoff, which paho's own reconnect loop does not offer.

On every connect the uplink publishes the retained birth (``GatewayState`` online, boot id,
agent version) and subscribes to ``cmd`` and ``config``; the retained last will says offline.
Incoming messages are acknowledged only after the agent handled them (``manual_ack``).
QoS1 messages paho still holds when a connection drops are re-sent by paho on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from edge.config import EdgeConfig, MqttProtocol
from edge.envelope import utc
from edge.errors import ConfigError
from edge.supervisor import Backoff
from protocols.codec import encode
from protocols.messages import GatewayState, GatewayStatus
from protocols.topics import Channel, topic

log = logging.getLogger(__name__)

RECEIVE_MAXIMUM = 32  # downlink QoS1 messages the broker may send before we acknowledge one


@dataclass(frozen=True, slots=True)
class Inbound:
    """A downlink message as it arrived; ``ack()`` it once handled."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    generation: int


class Uplink:
    def __init__(
        self,
        config: EdgeConfig,
        boot_id: str,
        agent_version: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.boot_id = boot_id
        self.agent_version = agent_version
        self.clock = clock
        self.backoff = Backoff(config.broker.reconnect_min, config.broker.reconnect_max)
        self.state_topic = topic(config.site, config.gateway, Channel.STATE)
        self.downlink = (
            topic(config.site, config.gateway, Channel.CMD),
            topic(config.site, config.gateway, Channel.CONFIG),
        )
        self.connected_since = 0.0  # wall-clock time of the current connection's CONNACK
        self.reconnects = 0  # connections lost or failed since start
        self.connects = 0
        self.rejected_pubacks = 0  # MQTT 5 PUBACKs with a failure reason code
        self.generation = 0  # bumped for every new paho client
        # Hooks the agent sets; all are called on the event loop thread.
        self.on_puback: Callable[[int], None] = lambda mid: None
        self.on_message: Callable[[Inbound], None] = lambda msg: None
        self.on_change: Callable[[bool], None] = lambda up: None
        self.on_new_client: Callable[[], None] = lambda: None
        self._client: mqtt.Client | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._lost = asyncio.Event()
        self._closing = False

    # -- state ------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        await self._connected.wait()

    async def wait_subscribed(self) -> None:
        """Wait until the broker confirmed the cmd/config subscriptions of this connection:
        from then on a command sent to the gateway reaches it (before, a first connection
        may not have them yet)."""
        await self._subscribed.wait()

    def _state(self, status: GatewayStatus, reason: str | None = None) -> bytes:
        return encode(
            GatewayState(
                status=status,
                boot_id=self.boot_id,
                ts=utc(self.clock()),
                agent_version=self.agent_version,
                reason=reason,
            )
        )

    # -- paho client --------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        broker = self.config.broker
        v5 = broker.protocol is MqttProtocol.V5
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id(),
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            reconnect_on_failure=False,
            manual_ack=True,
        )
        client.connect_timeout = broker.connect_timeout
        # What is on the wire unacknowledged; the outbox caps what paho holds in memory.
        client.max_inflight_messages_set(min(100, self.config.outbox.max_inflight))
        client.max_queued_messages_set(0)
        client.will_set(
            self.state_topic, self._state(GatewayStatus.OFFLINE, "will"), qos=1, retain=True
        )
        if broker.username is not None:
            password = broker.password
            if broker.password_file is not None:
                try:
                    password = broker.password_file.read_text().strip()
                except OSError as exc:
                    raise ConfigError(
                        f"cannot read broker.password_file: {exc}", "broker.password_file"
                    ) from exc
            client.username_pw_set(broker.username, password)
        if broker.tls:
            client.tls_set(
                ca_certs=str(broker.ca_file) if broker.ca_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def _connect(self, client: mqtt.Client) -> None:
        broker = self.config.broker
        if broker.protocol is MqttProtocol.V5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = broker.session_expiry
            props.ReceiveMaximum = RECEIVE_MAXIMUM
            client.connect(
                broker.host, broker.port, broker.keepalive, clean_start=False, properties=props
            )
        else:
            client.connect(broker.host, broker.port, broker.keepalive)

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        """From paho's thread: run ``fn(*args)`` on the event loop."""
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # a closed loop: the agent is gone
            loop.call_soon_threadsafe(fn, *args)

    # paho callbacks: network thread -------------------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        client.subscribe([(t, 1) for t in self.downlink])
        client.publish(self.state_topic, self._state(GatewayStatus.ONLINE), qos=1, retain=True)
        self._call(self._set_connected, self.clock())

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._call(self._set_lost, str(reason))

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        if any(r.is_failure for r in reasons):
            log.error("broker refused the downlink subscriptions: %s", reasons)
            return
        self._call(self._subscribed.set)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self._call(self._puback, mid, reason.is_failure, str(reason))

    def _on_message(self, client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        inbound = Inbound(msg.topic, bytes(msg.payload), msg.mid, msg.qos, self.generation)
        self._call(self.on_message, inbound)

    # event-loop side ------------------------------------------------------------------------

    def _set_connected(self, since: float) -> None:
        self.connected_since = since
        self.connects += 1
        self._connected.set()
        log.info("uplink connected to %s:%d", self.config.broker.host, self.config.broker.port)
        self.on_change(True)

    def _set_lost(self, reason: str) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        self._subscribed.clear()
        self._lost.set()
        if was and not self._closing:
            log.warning("uplink lost: %s", reason)
        self.on_change(False)

    def _puback(self, mid: int, failed: bool, reason: str) -> None:
        if failed:
            self.rejected_pubacks += 1
            log.warning("broker refused message mid=%d: %s (dropped)", mid, reason)
        self.on_puback(mid)

    def ack(self, inbound: Inbound) -> None:
        """Acknowledge a handled downlink message (no-op if its client is gone)."""
        if self._client is not None and inbound.generation == self.generation and inbound.qos:
            self._client.ack(inbound.mid, inbound.qos)

    def publish(self, topic_: str, payload: bytes, *, retain: bool = False) -> int:
        """Publish QoS1; returns paho's mid. Call from the event loop only."""
        if self._client is None:
            raise RuntimeError("uplink not started")
        info = self._client.publish(topic_, payload, qos=1, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise OSError(f"paho publish failed: {mqtt.error_string(info.rc)}")
        return info.mid

    # -- the supervised task -----------------------------------------------------------------

    async def run(self) -> None:
        """Connect, and reconnect after each loss, until cancelled."""
        self._loop = asyncio.get_running_loop()
        client = self._make_client()
        self._client = client
        self.generation += 1
        self.on_new_client()
        attempt = 0
        try:
            while True:
                self._lost.clear()
                try:
                    await asyncio.to_thread(self._connect, client)
                except (OSError, ValueError) as exc:
                    self.reconnects += 1
                    delay = self.backoff.delay(attempt)
                    attempt += 1
                    log.warning("uplink connect failed (%s); retry in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                client.loop_start()
                await self._lost.wait()
                await asyncio.to_thread(client.loop_stop)
                if self._closing:
                    return
                self.reconnects += 1
                if self.clock() - self.connected_since > 30:
                    attempt = 0
                delay = self.backoff.delay(attempt)
                attempt += 1
                log.info("uplink reconnecting in %.1fs", delay)
                await asyncio.sleep(delay)
        finally:
            self._connected.clear()
            if not self._closing:  # a fault, not close(): drop this client entirely
                await asyncio.to_thread(self._drop, client)

    def _drop(self, client: mqtt.Client) -> None:
        client.loop_stop()
        with contextlib.suppress(OSError):
            client.disconnect()
        if self._client is client:
            self._client = None

    async def close(self, wait: float = 2.0) -> None:
        """Say goodbye: retained offline state, disconnect, stop the network thread."""
        client = self._client
        if client is None:
            return
        self._closing = True
        self._connected.clear()  # the sender stops handing rows to this client now
        self._client = None
        if client.is_connected():
            info = client.publish(
                self.state_topic, self._state(GatewayStatus.OFFLINE, "shutdown"), 1, True
            )
            try:
                await asyncio.to_thread(info.wait_for_publish, wait)
            except (RuntimeError, ValueError) as exc:  # lost the connection meanwhile
                log.info("offline state not confirmed: %s", exc)
            client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self._connected.clear()

"""The MQTT side of ingest: a paho client (the library aiomqtt wraps) in its own network thread.

Why not aiomqtt's message iterator: aiomqtt 2.5 acknowledges a QoS1 message as soon as paho
receives it and drops already-acknowledged messages when its queue bound is reached (see
docs/cloud-ingest.md). Here paho runs with ``manual_ack=True``: nothing is acknowledged until
:meth:`Receiver.ack` is called after the database commit, and the message callback blocks on a
:class:`BoundedBuffer` when ingest falls behind, so memory stays bounded and nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.ingest.buffer import BoundedBuffer, Delivery
from cloud.ingest.config import IngestConfig
from protocols.topics import Channel

log = logging.getLogger(__name__)

URGENT_CHANNELS = (Channel.EVENT, Channel.ACCESS)
"""Channels that take the fast lane (device events incl. safety alarms, door alarms)."""
_URGENT_ENDINGS = tuple(f"/{c.value}" for c in URGENT_CHANNELS)
# A peek at the topic's last level, not a parse: the network thread must stay cheap, and the
# decoder parses (and dead-letters) the topic properly later.


class Receiver:
    """Connects with a persistent MQTT 5 session, subscribes, feeds the buffer, sends acks."""

    def __init__(
        self,
        config: IngestConfig,
        buffer: BoundedBuffer,
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self._on_subscribed = on_subscribed
        self.buffer = buffer
        self._stopping = threading.Event()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.connection = 0  # bumped on every successful connect
        self.connects = 0
        self.session_present = False
        self.thread_id: int | None = None  # native id of paho's network thread (profiling)
        client = make_client(config)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(1, config.reconnect_max_s)
        self._client = client

    def start(self) -> None:
        self._client.connect_async(
            self.config.host, self.config.port, **connect_options(self.config)
        )
        self._client.loop_start()

    def stop(self) -> None:
        """Disconnect without acknowledging anything still buffered (the broker keeps it)."""
        self._stopping.set()
        self._client.disconnect()
        self._client.loop_stop()

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """Acknowledge stored deliveries; those from an earlier connection are skipped
        (the broker redelivers them and dedup drops the copies). Returns how many were acked."""
        current = self.connection
        sent = 0
        for d in deliveries:
            if d.qos > 0 and d.connection == current:
                self._client.ack(d.mid, d.qos)
                sent += 1
        return sent

    # -- paho callbacks (network thread) --------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if not accept_connection(client, self.config, flags, reason, "ingest"):
            return
        self.connection += 1
        self.connects += 1
        self.thread_id = threading.get_native_id()
        self.session_present = flags.session_present
        self.connected.set()

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set():
            log.warning("ingest disconnected from broker (%s); reconnecting", reason)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        log_subscription(self.config, reasons, "ingest")
        self.subscribed.set()
        if self._on_subscribed is not None:
            self._on_subscribed()

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        self.buffer.put(delivery_of(msg, self.connection), self._stopping.is_set)


def make_client(config: IngestConfig, cls: type[paho.Client] = paho.Client) -> paho.Client:
    """A paho client with ingest's session: manual acks, MQTT 5 (3.1.1: clean_session false),
    the broker credentials. Callbacks are the caller's."""
    client = cls(
        CallbackAPIVersion.VERSION2,
        client_id=config.client_id,
        protocol=paho.MQTTv5 if config.protocol == "5" else paho.MQTTv311,
        clean_session=None if config.protocol == "5" else False,
        manual_ack=True,
    )
    if config.username is not None:
        client.username_pw_set(config.username, config.password)
    return client


def connect_options(config: IngestConfig) -> dict[str, Any]:
    """``connect``/``connect_async`` keyword arguments: keepalive, and for MQTT 5 the
    persistent session (clean_start false, session expiry) and the Receive Maximum."""
    if config.protocol != "5":  # 3.1.1: the session comes from clean_session=False
        return {"keepalive": config.keepalive_s}
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = config.session_expiry_s
    props.ReceiveMaximum = config.max_inflight
    return {"keepalive": config.keepalive_s, "clean_start": False, "properties": props}


def accept_connection(
    client: paho.Client,
    config: IngestConfig,
    flags: paho.ConnectFlags,
    reason: ReasonCode,
    who: str,
) -> bool:
    """On a CONNACK: False if the broker refused (logged); else subscribe and log."""
    if reason.is_failure:
        log.warning("broker refused %s connection: %s", who, reason)
        return False
    subscribe(client, config)
    log.info(
        "%s %s connected to %s:%d (session present: %s)",
        who,
        config.client_id,
        config.host,
        config.port,
        flags.session_present,
    )
    return True


def log_subscription(config: IngestConfig, reasons: list[ReasonCode], who: str) -> None:
    """On a SUBACK: log what the broker refused, or that the subscription is in place."""
    refused = [r for r in reasons if r.is_failure]
    if refused:
        log.error("broker refused %s subscriptions: %s", who, refused)
    else:
        log.info("%s %s subscribed", who, config.client_id)


def subscribe(client: paho.Client, config: IngestConfig) -> None:
    """Subscribe to ingest's filters with QoS1 (on every connect: a lost session comes back)."""
    if config.protocol == "5":
        options = SubscribeOptions(qos=1)
        client.subscribe([(f, options) for f in config.filters()])
    else:
        client.subscribe([(f, 1) for f in config.filters()])


def delivery_of(msg: paho.MQTTMessage, connection: int) -> Delivery:
    """A received message as a :class:`Delivery` (received now, on ``connection``)."""
    try:
        topic = msg.topic
    except UnicodeDecodeError:
        topic = msg._topic.decode("utf-8", "replace")  # the decoder dead-letters it
    return Delivery(
        topic,
        bytes(msg.payload),
        msg.mid,
        msg.qos,
        datetime.now(UTC),
        connection,
        topic.endswith(_URGENT_ENDINGS),
    )

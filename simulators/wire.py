"""Wire faults: messages a correct gateway never sends, published straight onto its topics.

A real edge agent stamps every message once, in order, and encodes it with the wire contract,
so malformed payloads, duplicated msg_ids and out-of-order sequence numbers cannot come out of
it on purpose. These faults are therefore made here and published by a plain paho client on
the gateway's own topics (built by :mod:`protocols.topics`). Duplicated and reordered telemetry
uses its own boot id, so the cloud's gap detection for the agent's boot is not disturbed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from protocols.codec import MAX_PAYLOAD_BYTES, encode, new_id
from protocols.messages import Reading, Telemetry
from protocols.topics import Channel, topic
from simulators.errors import SimulatorError
from simulators.scenario import Malformed, WireStep

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WireMessage:
    topic: str
    payload: bytes
    what: str


def malformed(site: str, gateway: str, kind: Malformed) -> WireMessage:
    """One message of the given malformed class for a gateway's topics."""
    telemetry = topic(site, gateway, Channel.TELEMETRY)
    if kind is Malformed.BAD_TOPIC:
        # A topic the grammar refuses cannot be built by protocols.topics: the gateway's valid
        # telemetry topic with an unknown channel as its last level.
        return WireMessage(telemetry.rsplit("/", 1)[0] + "/bogus", b"{}", kind.value)
    if kind is Malformed.NOT_JSON:
        return WireMessage(telemetry, b'{"readings": [', kind.value)
    if kind is Malformed.NOT_UTF8:
        return WireMessage(telemetry, b"\xff\xfe\xfd not text", kind.value)
    if kind is Malformed.SCHEMA:
        return WireMessage(telemetry, b'{"v": 1, "msg_id": "x", "readings": []}', kind.value)
    if kind is Malformed.TOO_LARGE:
        return WireMessage(telemetry, b'{"pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}', kind.value)
    # WRONG_DIRECTION: a telemetry payload on the gateway's command channel; the agent refuses it.
    return WireMessage(topic(site, gateway, Channel.CMD), b'{"v": 1}', kind.value)


def telemetry_run(
    site: str, gateway: str, device: str, metric: str, value: float | bool, count: int, ts: float
) -> list[WireMessage]:
    """``count`` telemetry messages of one boot with seq 0…count-1, one reading each."""
    boot = new_id()
    out = []
    for seq in range(count):
        when = datetime.fromtimestamp(ts + seq * 0.001, UTC)
        msg = Telemetry(
            msg_id=new_id(),
            boot_id=boot,
            seq=seq,
            ts=when,
            readings=(Reading(device=device, metric=metric, value=value, ts=when),),
        )
        out.append(WireMessage(topic(site, gateway, Channel.TELEMETRY), encode(msg), f"seq {seq}"))
    return out


def plan(site: str, step: WireStep, ts: float) -> list[WireMessage]:
    """Every message a wire step publishes, in publishing order."""
    out = [malformed(site, step.gateway, kind) for kind in step.malformed]
    if step.duplicate:
        assert step.device is not None and step.metric is not None
        value = step.value if step.value is not None else 0.0
        run = telemetry_run(site, step.gateway, step.device, step.metric, value, step.duplicate, ts)
        out += [m for msg in run for m in (msg, msg)]
    if step.reorder:
        assert step.device is not None and step.metric is not None
        value = step.value if step.value is not None else 0.0
        run = telemetry_run(site, step.gateway, step.device, step.metric, value, step.reorder, ts)
        out += list(reversed(run))
    return out


def _chunks(items: Sequence[WireMessage], size: int) -> Iterator[Sequence[WireMessage]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def publish(host: str, port: int, messages: Sequence[WireMessage], timeout: float = 10.0) -> None:
    """Publish with QoS1 and wait for every PUBACK (blocking: call it in a thread)."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"linli-sim-wire-{new_id()[:12]}",
        protocol=mqtt.MQTTv5,
    )
    connected = threading.Event()
    client.on_connect = lambda *_args: connected.set()
    try:
        client.connect(host, port, keepalive=30)
    except OSError as exc:
        raise SimulatorError(f"cannot connect to the broker {host}:{port}: {exc}") from exc
    client.loop_start()
    try:
        if not connected.wait(timeout):
            raise SimulatorError(f"no CONNACK from {host}:{port} within {timeout} s")
        for chunk in _chunks(messages, 100):
            infos = [client.publish(m.topic, m.payload, qos=1) for m in chunk]
            for info, m in zip(infos, chunk, strict=True):
                info.wait_for_publish(timeout)
                if not info.is_published():
                    raise SimulatorError(f"wire message {m.what} on {m.topic} was not acked")
        log.info("published %d wire-fault messages", len(messages))
    finally:
        client.disconnect()
        client.loop_stop()

"""The receiver process's single-thread MQTT loop (cloud/ingest/passes.py, receive.py).

Real mosquitto throughout. ``PassReceiver`` is driven directly for the pass bounds and the
acknowledgements; ``ReceiverProcess`` runs in a thread of the test (the same loop the process
runs) with a raw log of its own for reconnecting and the budget. The process as a whole
(kill -9, the expander, the fast lane): test_ingest_split.py.
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import paho.mqtt._packet as _packet
import pytest
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from cloud.ingest.buffer import Delivery
from cloud.ingest.config import IngestConfig
from cloud.ingest.passes import PassReceiver, share_property_tables
from cloud.ingest.rawlog import RawLog
from cloud.ingest.receive import ReceiverProcess
from linli.services import Mosquitto
from protocols.topics import Channel
from tests.cloud.ingest.ingest_support import Gateway, Publisher


def _config(broker: Mosquitto, site: str, tmp_path: Path, **kw: Any) -> IngestConfig:
    return IngestConfig(
        port=broker.port,
        client_id=f"recv-{site}",
        sites=(site,),
        mode="split",
        rawlog_path=tmp_path / "raw.sqlite",
        **kw,
    )


def _wait(predicate: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _send(broker: Mosquitto, frames: list[tuple[str, bytes]]) -> None:
    """A publisher of its own per call: the broker may have been restarted since."""
    publisher = Publisher(broker.port)
    try:
        publisher.send(frames)
    finally:
        publisher.close()


def _passes_until(r: PassReceiver, predicate: Callable[[], bool], within: float = 20.0) -> None:
    """Drive the receiver (connect + empty passes) until ``predicate()``; nothing may arrive."""
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        if r.connect():
            assert r.read_pass(100, 1 << 20, 0.05) == []
        else:
            time.sleep(0.02)


def _drain(r: PassReceiver, quiet_s: float = 1.0) -> list[Delivery]:
    """Read passes until nothing arrived for ``quiet_s``."""
    got: list[Delivery] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        batch = r.read_pass(1000, 1 << 20, 0.05)
        if batch:
            got += batch
            last = time.monotonic()
    return got


def test_a_pass_is_bounded_ends_at_an_urgent_message_and_acks_only_what_was_acked(
    mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    gw = Gateway(site)
    config = _config(mosquitto, site, tmp_path)
    r = PassReceiver(config)
    _passes_until(r, lambda: r.subscribed)
    # Small messages (~30 KB in all): they fit in the socket's buffers, so once the broker
    # has them every one is in the socket (Receive Maximum 1000) and a pass can read them all.
    telemetry = [gw.frame(gw.telemetry()) for _ in range(100)]
    size = len(telemetry[0][1])
    _send(mosquitto, telemetry)
    time.sleep(1.0)
    first = r.read_pass(30, 1 << 20, 1.0)
    assert len(first) == 30  # the message bound
    second = r.read_pass(1000, 5 * size, 1.0)
    assert len(second) == 5  # the byte bound (reached with the fifth message)
    rest = _drain(r)
    assert len(rest) == 65
    assert [d.payload for d in first + second + rest] == [p for _, p in telemetry]

    before = [gw.frame(gw.telemetry()) for _ in range(10)]
    alarm = gw.frame(gw.event(), Channel.EVENT)
    after = [gw.frame(gw.telemetry()) for _ in range(10)]
    _send(mosquitto, [*before, alarm, *after])
    time.sleep(1.0)
    urgent_pass = r.read_pass(1000, 1 << 20, 1.0)
    assert [d.payload for d in urgent_pass] == [p for _, p in [*before, alarm]]
    assert urgent_pass[-1].urgent and not any(d.urgent for d in urgent_pass[:-1])
    tail = _drain(r)
    assert [d.payload for d in tail] == [p for _, p in after]

    # Acknowledge all but the urgent pass and the tail: only those come again.
    assert r.ack(first + second + rest) == 100
    r.close()
    again = PassReceiver(config)
    assert again.connect()
    redelivered = _drain(again)  # the CONNACK, then what was not acknowledged
    assert again.connects == 1 and again.session_present
    assert sorted(d.payload for d in redelivered) == sorted(d.payload for d in urgent_pass + tail)
    assert again.ack(redelivered) == len(redelivered)
    again.close()


@contextmanager
def _receiver_thread(config: IngestConfig) -> Iterator[ReceiverProcess]:
    process = ReceiverProcess(config)
    stop = threading.Event()
    thread = threading.Thread(target=process.run, args=(stop,), name="receiver-under-test")
    thread.start()
    try:
        yield process
    finally:
        stop.set()
        thread.join(30)
        assert not thread.is_alive()


def _logged(config: IngestConfig) -> list[bytes]:
    log = RawLog(config.rawlog_file())
    try:
        return [row.payload for row in log.read_after(0, 1_000_000)]
    finally:
        log.close()


def test_receiver_reconnects_by_itself_refused_restarted_and_killed_broker(
    own_mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    broker = own_mosquitto
    gw = Gateway(site)
    config = _config(broker, site, tmp_path, reconnect_max_s=1)
    broker.stop()  # the broker is not there yet: connections are refused
    sent: list[bytes] = []

    def burst() -> None:
        frames = [gw.frame(gw.telemetry(readings=5)) for _ in range(50)]
        _send(broker, frames)
        sent.extend(p for _, p in frames)
        _wait(lambda: set(sent) <= set(_logged(config)) and process.acked == process.appended)
        time.sleep(0.3)  # the PUBACKs reach the broker before it goes

    with _receiver_thread(config) as process:
        time.sleep(1.0)
        assert process.receiver.connects == 0 and not process.receiver.connected
        broker.start()
        _wait(lambda: process.receiver.subscribed)
        burst()
        broker.restart()  # clean stop: the session is saved and comes back
        _wait(lambda: process.receiver.connects == 2 and process.receiver.subscribed)
        burst()
        broker.kill()  # no save: the session may be lost; the receiver subscribes again
        broker.start()
        _wait(lambda: process.receiver.connects == 3 and process.receiver.subscribed)
        burst()
    logged = _logged(config)
    assert len(sent) == 150 and set(logged) == set(sent)  # nothing lost
    # Up to the kill each message was logged once, in order: only appended ones were acked.
    # (A killed broker may deliver again what it had not saved as acknowledged.)
    assert logged[:100] == sent[:100]
    status = RawLog(config.rawlog_file()).status()
    assert status.connects == 3
    assert status.received == status.appended == status.acked == len(logged)


def test_over_budget_the_receiver_stops_reading_keeps_the_connection_and_resumes(
    mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    gw = Gateway(site)
    budget, batch, keepalive = 20, 10, 5
    config = _config(
        mosquitto,
        site,
        tmp_path,
        keepalive_s=keepalive,
        batch_size=batch,
        queue_bound=batch,
        rawlog_budget_rows=budget,
    )
    frames = [gw.frame(gw.telemetry(readings=2)) for _ in range(100)]
    with _receiver_thread(config) as process:
        _wait(lambda: process.receiver.subscribed)
        _send(mosquitto, frames)
        _wait(lambda: process.paused == 1)
        # Longer than paho's own keepalive give-up (2 × keepalive without a PINGRESP read)
        # and mosquitto's (1.5 × keepalive without a packet): the pings keep it connected.
        time.sleep(2.4 * keepalive)
        held = process.appended
        assert budget <= held <= budget + batch
        assert process.acked == held  # the rest is the broker's: nothing read, nothing acked
        assert process.receiver.connects == 1 and process.receiver.connected
        log = RawLog(config.rawlog_file())
        deadline = time.monotonic() + 30
        while process.acked < 100:  # as if ingest stored everything logged so far, repeatedly
            assert time.monotonic() < deadline, "timed out"
            log.advance(log.backlog().last_id)
            time.sleep(0.05)
        log.close()
        assert process.paused >= 2 and process.receiver.connects == 1
    assert _logged(config)[-1] == frames[-1][1]


def _publish_body(topic: bytes, mid: int, properties: Properties, payload: bytes) -> bytes:
    """A QoS1 MQTT 5 PUBLISH packet after its fixed header."""
    packed: bytes = properties.pack()  # type: ignore[no-untyped-call]
    return struct.pack("!H", len(topic)) + topic + struct.pack("!H", mid) + packed + payload


def test_shared_property_tables_decode_publish_properties_as_paho_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(vars(_packet), "Properties", Properties)  # restored after the test
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = 60
    props.ContentType = "application/json"
    props.UserProperty = [("a", "1"), ("b", "2")]
    props.SubscriptionIdentifier = 7
    with_props = _publish_body(b"t/1", 5, props, b"payload")
    bare = _publish_body(b"t/2", 6, Properties(PacketTypes.PUBLISH), b"x")  # type: ignore[no-untyped-call]
    header = 0x32  # PUBLISH, QoS1
    paho_own = _packet.decode_publish(header, with_props, MQTTProtocolVersion.MQTTv5)
    share_property_tables()
    assert vars(_packet)["Properties"] is not Properties
    shared = _packet.decode_publish(header, with_props, MQTTProtocolVersion.MQTTv5)
    empty = _packet.decode_publish(header, bare, MQTTProtocolVersion.MQTTv5)
    assert type(shared.properties) is not Properties
    expected = {
        "MessageExpiryInterval": 60,
        "ContentType": "application/json",
        "UserProperty": [("a", "1"), ("b", "2")],
        "SubscriptionIdentifier": [7],
    }
    assert paho_own.properties is not None and shared.properties is not None
    json = Properties.json
    assert json(paho_own.properties) == json(shared.properties) == expected  # type: ignore[no-untyped-call]
    assert empty.properties is not None  # and has none of the other's values:
    assert json(empty.properties) == {}  # type: ignore[no-untyped-call]
    assert (shared.topic, shared.mid, shared.payload) == (b"t/1", 5, b"payload")


def test_a_pass_cut_by_a_lost_connection_is_dropped_and_comes_again(
    own_mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    broker = own_mosquitto
    gw = Gateway(site)
    config = _config(broker, site, tmp_path, reconnect_max_s=1)
    r = PassReceiver(config)
    _passes_until(r, lambda: r.subscribed)
    frames = [gw.frame(gw.telemetry()) for _ in range(50)]
    _send(broker, frames)
    broker.stop()  # saves the session with the 50 unacknowledged, then closes our connection
    time.sleep(0.5)  # the 50 deliveries sit in our socket, followed by its end
    assert r.read_pass(1000, 1 << 20, 1.0) == []  # read, then cut off: never handed over
    assert not r.connected and r.received == 0
    broker.start()
    _wait(r.connect, 10)  # after its backoff
    again = _drain(r)  # the CONNACK, then the broker's redelivery
    assert [d.payload for d in again] == [p for _, p in frames]
    assert r.received == 50 and r.connects == 2
    assert r.ack(again) == 50
    r.close()

"""The buffer's fast lane and group commit: urgent channels first, each gateway in order."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from cloud.ingest import Ingest, StoredMessage
from cloud.ingest.buffer import BoundedBuffer, Delivery
from cloud.registry import Registry
from linli.services import Mosquitto
from protocols.messages import DeviceEvent, Telemetry
from protocols.topics import Channel, topic
from tests.cloud.ingest.ingest_support import Gateway, Publisher, config, running, until

SITE = "s1"


def delivery(gateway: str, channel: Channel, n: int) -> Delivery:
    return Delivery(
        topic(SITE, gateway, channel),
        f"{gateway}-{channel.value}-{n}".encode(),
        n,
        1,
        datetime.now(UTC),
        urgent=channel in (Channel.EVENT, Channel.ACCESS),
    )


def fill(buffer: BoundedBuffer, items: Sequence[Delivery]) -> None:
    for d in items:
        assert buffer.put(d, lambda: False)


def names(batch: Sequence[Delivery]) -> list[str]:
    return [d.payload.decode() for d in batch]


def test_urgent_goes_first_with_its_own_gateways_earlier_messages() -> None:
    buffer = BoundedBuffer(100, 1 << 20)
    fill(
        buffer,
        [
            delivery("gw1", Channel.TELEMETRY, 1),
            delivery("gw2", Channel.TELEMETRY, 2),
            delivery("gw1", Channel.TELEMETRY, 3),
            delivery("gw2", Channel.EVENT, 4),
            delivery("gw1", Channel.TELEMETRY, 5),
            delivery("gw2", Channel.TELEMETRY, 6),
        ],
    )
    # A long linger and a batch that is not full: only the urgent delivery ends the wait.
    first = buffer.take(50, 60.0, 1.0)
    assert names(first) == ["gw2-telemetry-2", "gw2-event-4"]
    rest = buffer.take(50, 0.0, 1.0)
    assert names(rest) == [
        "gw1-telemetry-1",
        "gw1-telemetry-3",
        "gw1-telemetry-5",
        "gw2-telemetry-6",
    ]
    assert buffer.fast_lane_batches == 1
    assert len(buffer) == 0 and buffer.nbytes == 0


def test_fast_lane_respects_the_batch_size_and_keeps_order() -> None:
    buffer = BoundedBuffer(100, 1 << 20)
    fill(buffer, [delivery("gw1", Channel.TELEMETRY, 0)])
    fill(buffer, [delivery("gw2", Channel.TELEMETRY, n) for n in range(1, 6)])
    fill(buffer, [delivery("gw2", Channel.ACCESS, 6), delivery("gw3", Channel.EVENT, 7)])
    assert names(buffer.take(3, 60.0, 1.0)) == [
        "gw2-telemetry-1",
        "gw2-telemetry-2",
        "gw2-telemetry-3",
    ]
    # Still urgent work queued: again ahead of gw1, still in each gateway's order.
    assert names(buffer.take(3, 60.0, 1.0)) == [
        "gw2-telemetry-4",
        "gw2-telemetry-5",
        "gw2-access-6",
    ]
    assert names(buffer.take(3, 60.0, 1.0)) == ["gw3-event-7"]
    assert names(buffer.take(3, 0.0, 1.0)) == ["gw1-telemetry-0"]


def test_urgent_at_the_head_is_plain_fifo() -> None:
    buffer = BoundedBuffer(100, 1 << 20)
    fill(buffer, [delivery("gw1", Channel.EVENT, 1), delivery("gw2", Channel.TELEMETRY, 2)])
    assert names(buffer.take(10, 60.0, 1.0)) == ["gw1-event-1", "gw2-telemetry-2"]
    assert buffer.fast_lane_batches == 0


def test_batches_are_bounded_in_bytes_too() -> None:
    buffer = BoundedBuffer(100, 1 << 20)
    fill(buffer, [delivery("gw1", Channel.TELEMETRY, n) for n in range(10, 16)])
    fill(buffer, [delivery("gw2", Channel.TELEMETRY, n) for n in range(20, 26)])
    fill(buffer, [delivery("gw2", Channel.EVENT, 26)])
    size = len(b"gw1-telemetry-10")
    # The fast lane first: gw2's messages, three at a time by bytes.
    assert names(buffer.take(100, 60.0, 1.0, max_bytes=3 * size)) == [
        "gw2-telemetry-20",
        "gw2-telemetry-21",
        "gw2-telemetry-22",
    ]
    assert len(names(buffer.take(100, 60.0, 1.0, max_bytes=3 * size + 5))) == 3
    assert names(buffer.take(100, 60.0, 1.0, max_bytes=3 * size)) == ["gw2-event-26"]
    assert names(buffer.take(100, 0.0, 1.0, max_bytes=2 * size)) == [
        "gw1-telemetry-10",
        "gw1-telemetry-11",
    ]
    # One delivery larger than the bound still goes, alone.
    assert names(buffer.take(100, 0.0, 1.0, max_bytes=1)) == ["gw1-telemetry-12"]
    assert len(buffer) == 3 and buffer.nbytes == 3 * size


def test_take_stops_lingering_when_the_writer_is_free() -> None:
    buffer = BoundedBuffer(100, 1 << 20)
    free = threading.Event()
    fill(buffer, [delivery("gw1", Channel.TELEMETRY, 1)])
    got: list[list[Delivery]] = []
    taker = threading.Thread(target=lambda: got.append(buffer.take(10, 60.0, 1.0, free.is_set)))
    taker.start()
    fill(buffer, [delivery("gw1", Channel.TELEMETRY, 2)])  # the batch grows while "busy"
    taker.join(0.2)
    assert taker.is_alive()  # not full, writer busy: still lingering
    free.set()
    buffer.wake()
    taker.join(30)
    assert not taker.is_alive()
    assert [names(b) for b in got] == [["gw1-telemetry-1", "gw1-telemetry-2"]]


@pytest.mark.anyio
async def test_each_gateways_order_survives_the_fast_lane(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
) -> None:
    """A backlog of telemetry and events from three gateways, drained with small batches:
    on_stored sees every gateway's messages in the order it published them."""
    gateways = [Gateway(site, f"gw{i}") for i in range(3)]
    seen: list[StoredMessage] = []

    async def hook(batch: Sequence[StoredMessage]) -> None:
        seen.extend(batch)

    cfg = config(mosquitto, site, batch_size=5, queue_bound=40)
    frames: list[tuple[str, bytes]] = []
    sent: dict[str, list[str]] = {g.gateway: [] for g in gateways}
    for i in range(60):
        gw = gateways[i % 3]
        msg: DeviceEvent | Telemetry
        if i % 7 == 3:
            msg = gw.event()
            frames.append(gw.frame(msg, Channel.EVENT))
        else:
            msg = gw.telemetry()
            frames.append(gw.frame(msg))
        sent[gw.gateway].append(msg.msg_id)
    async with running(Ingest(cfg, engine, Registry(engine))):
        pass  # the session exists now: the backlog waits in the broker
    publisher.send(frames)
    ingest = Ingest(cfg, engine, Registry(engine), on_stored=hook)
    async with running(ingest):
        await until(lambda: len(seen) >= 60)
    assert ingest.buffer.fast_lane_batches >= 1  # events did overtake other gateways
    got: dict[str, list[str]] = {g.gateway: [] for g in gateways}
    for m in seen:
        assert isinstance(m.message, DeviceEvent | Telemetry) and not m.duplicate
        got[m.gateway].append(m.message.msg_id)
    assert got == sent

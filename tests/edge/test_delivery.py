"""Delete only after PUBACK: messages a broker took but never acknowledged are sent again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge.agent import EdgeAgent
from edge.testing import Subscriber, edge_config, running, until
from linli.services import Mosquitto
from protocols.messages import Reading, Telemetry

pytestmark = pytest.mark.anyio

CONNACK = bytes([0x20, 0x02, 0x00, 0x00])  # MQTT 3.1.1: session not present, accepted


class BlackHole:
    """A fake broker (no real one can be told to withhold PUBACKs): it accepts the connection
    and swallows every PUBLISH without acknowledging it. Counts PUBLISH packets."""

    def __init__(self) -> None:
        self.publishes = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(1)
                length, shift = 0, 0
                while True:
                    byte = (await reader.readexactly(1))[0]
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if not byte & 0x80:
                        break
                await reader.readexactly(length)
                kind = header[0] >> 4
                if kind == 1:  # CONNECT
                    writer.write(CONNACK)
                    await writer.drain()
                elif kind == 3:  # PUBLISH: swallowed, never acknowledged
                    self.publishes += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def __aenter__(self) -> BlackHole:
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


@pytest.fixture
async def black_hole() -> AsyncIterator[BlackHole]:
    async with BlackHole() as hole:
        yield hole


async def test_unacknowledged_messages_stay_stored_and_are_sent_again(
    tmp_path: Path,
    mosquitto: Mosquitto,
    black_hole: BlackHole,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    overrides: dict[str, Any] = {
        "broker": {"protocol": "3.1.1"},
        "outbox": {"drain_timeout": 0.2, "historical_after": 0},
    }
    first = EdgeAgent(edge_config(tmp_path, black_hole, site, **overrides))
    made = []
    async with running(first):
        await until(lambda: first.uplink.connected, 10, "connected to the black hole")
        now = datetime.now(UTC)
        for i in range(50):
            reading = Reading(device="t-1", metric="temperature", value=float(i), ts=now)
            made.append(first.stamp(Telemetry, ts=now, readings=(reading,)))
        first.emit(*made)
        await until(lambda: black_hole.publishes >= 51, 10, "all published")  # + health
        await asyncio.sleep(0.5)
        assert first.outbox.depth == 51, "published is not acknowledged: nothing deleted"
        assert len(first.sender.inflight) == 51
    # the process is gone; its outbox is not: a new boot on a real broker sends the rows
    sub = subscriber_for(mosquitto, site)
    second = EdgeAgent(edge_config(tmp_path, mosquitto, site, **overrides))
    async with running(second):
        await until(lambda: second.sender.idle, 20, "replayed")
        assert second.outbox.counters["sent"] >= 51
    received = {
        d.message.msg_id: d.message
        for d in sub.snapshot()
        if isinstance(d.message, Telemetry) and d.message.boot_id == first.boot_id
    }
    assert set(received) >= {m.msg_id for m in made}
    assert all(received[m.msg_id].historical for m in made), "replayed data says so"
    assert [received[m.msg_id].seq for m in made] == [m.seq for m in made]

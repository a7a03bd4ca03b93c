"""Supervision: a faulty driver restarts with backoff while the rest of the agent carries on."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.drivers.base import DeviceInfo, Driver, Sample
from edge.errors import DriverError
from edge.supervisor import Backoff, TaskStats, supervise
from edge.testing import Subscriber, edge_config, running, until
from linli.services import Mosquitto
from protocols.kinds import DeviceKind
from protocols.messages import Telemetry

pytestmark = pytest.mark.anyio


def test_backoff_is_capped_and_jittered() -> None:
    b = Backoff(initial=0.5, maximum=8.0)
    assert b.delay(0, lambda: 0.0) == 0.25 and b.delay(0, lambda: 1.0) == 0.5
    assert b.delay(3, lambda: 1.0) == 4.0
    assert b.delay(10, lambda: 1.0) == 8.0 and b.delay(1000, lambda: 0.0) == 4.0
    delays = {round(b.delay(2), 6) for _ in range(50)}
    assert len(delays) > 1 and all(1.0 <= d <= 2.0 for d in delays)


async def test_supervise_restarts_after_faults_and_stops_on_return() -> None:
    calls = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise OSError("bus error")

    stats = TaskStats()
    await asyncio.wait_for(supervise("flaky", flaky, Backoff(0.01, 0.02), stats), 5)
    assert len(calls) == 3
    assert stats.restarts == 2 and stats.last_error == "OSError: bus error"


class FlakyDriver(Driver):
    """Fails on its first reads, then works: a sensor bus that glitches at start-up."""

    def __init__(self, failures: int) -> None:
        super().__init__("flaky", 0.02)
        self.failures = failures
        self.opened = 0
        self.closed = 0

    @property
    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("flaky-1", DeviceKind.TEMPERATURE)]

    async def open(self) -> None:
        self.opened += 1

    async def close(self) -> None:
        self.closed += 1

    async def read(self, now: float) -> list[Sample]:
        if self.failures > 0:
            self.failures -= 1
            raise DriverError("sensor bus glitch")
        return [Sample("flaky-1", DeviceKind.TEMPERATURE, "temperature", 20.0, now)]


class SteadyDriver(Driver):
    def __init__(self) -> None:
        super().__init__("steady", 0.02)
        self.n = 0

    @property
    def devices(self) -> list[DeviceInfo]:
        return [DeviceInfo("steady-1", DeviceKind.HUMIDITY)]

    async def read(self, now: float) -> list[Sample]:
        self.n += 1
        return [Sample("steady-1", DeviceKind.HUMIDITY, "humidity", float(self.n), now)]


async def test_a_faulty_driver_does_not_take_the_others_down(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(mosquitto, site)
    flaky, steady = FlakyDriver(failures=4), SteadyDriver()
    config = edge_config(
        tmp_path, mosquitto, site, report={"mode": "change"}, restart={"initial": 0.1}
    )
    agent = EdgeAgent(config, drivers=[flaky, steady])

    def devices(items: object) -> set[str]:
        return {
            r.device
            for d in sub.snapshot()
            if isinstance(d.message, Telemetry)
            for r in d.message.readings
        }

    async with running(agent):
        await sub.await_for(lambda ms: "flaky-1" in devices(ms), 20)
        stats = agent.stats["driver:flaky"]
        assert stats.restarts == 4 and stats.last_error == "DriverError: sensor bus glitch"
        assert flaky.opened == 5 and flaky.closed == 4, "closed before each reopen"
        assert agent.stats["driver:steady"].restarts == 0
        assert agent.stats["uplink"].restarts == 0 and agent.stats["outbox"].restarts == 0
        assert steady.n > 10, "the steady driver kept reading through the faults"


async def test_an_uplink_fault_restarts_it_with_a_new_client_and_loses_nothing(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sub = subscriber_for(mosquitto, site)
    steady = SteadyDriver()
    config = edge_config(tmp_path, mosquitto, site, report={"mode": "change"})
    agent = EdgeAgent(config, drivers=[steady])
    real_connect = agent.uplink._connect
    calls = []

    def connect_with_a_bug(client: object) -> None:
        calls.append(client)
        if len(calls) == 1:
            raise RuntimeError("bug in the connect path")
        real_connect(client)  # type: ignore[arg-type]

    monkeypatch.setattr(agent.uplink, "_connect", connect_with_a_bug)
    async with running(agent):
        await until(lambda: steady.n > 20 and agent.uplink.connected, 20)
        await until(lambda: agent.sender.idle, 20)
        made = agent.stamper.next_seq
    assert agent.stats["uplink"].restarts == 1
    assert agent.uplink.generation == 2 and calls[0] is not calls[1], "a fresh paho client"
    assert agent.stats["outbox"].restarts == 0
    seqs = {
        d.message.seq
        for d in sub.snapshot()
        if isinstance(d.message, Telemetry) and d.message.boot_id == agent.boot_id
    }
    assert set(range(made)) <= seqs, "what was stored before the fault was delivered"

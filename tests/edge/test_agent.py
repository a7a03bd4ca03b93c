"""The agent end to end against a real mosquitto: telemetry, birth and will, safety events."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.drivers.simulated import SimulatedDriver
from edge.testing import Subscriber, edge_config, running
from linli.services import Mosquitto
from protocols.messages import (
    DeviceEvent,
    EventPriority,
    GatewayState,
    GatewayStatus,
    Telemetry,
)
from protocols.topics import Channel

pytestmark = pytest.mark.anyio

SIM = {
    "type": "simulated",
    "name": "sim",
    "interval": 0.05,
    "devices": [
        {"id": "smoke-1", "kind": "smoke", "seed": 1},
        {"id": "temp-1", "kind": "temperature", "seed": 2},
    ],
}


async def test_readings_birth_and_safety_event(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(mosquitto, site)
    config = edge_config(
        tmp_path, mosquitto, site, drivers=[SIM], report={"mode": "period", "period": 0.01}
    )
    agent = EdgeAgent(config)
    async with running(agent):
        await sub.await_for(lambda ms: any(isinstance(d.message, Telemetry) for d in ms))
        driver = agent.drivers[0]
        assert isinstance(driver, SimulatedDriver)
        driver.virtual["smoke-1"].force("smoke", True)
        await sub.await_for(
            lambda ms: any(
                isinstance(d.message, DeviceEvent) and d.message.event == "smoke.alarm" for d in ms
            )
        )
        driver.virtual["smoke-1"].force("smoke", False)
        await sub.await_for(
            lambda ms: any(
                isinstance(d.message, DeviceEvent) and d.message.event == "smoke.clear" for d in ms
            )
        )
    items = sub.snapshot()
    states = [d.message for d in items if isinstance(d.message, GatewayState)]
    assert states[0].status is GatewayStatus.ONLINE
    assert states[0].boot_id == agent.boot_id
    assert states[0].agent_version
    assert states[-1].status is GatewayStatus.OFFLINE and states[-1].reason == "shutdown"
    alarm = next(
        d.message
        for d in items
        if isinstance(d.message, DeviceEvent) and d.message.event == "smoke.alarm"
    )
    assert alarm.priority is EventPriority.SAFETY and alarm.device == "smoke-1"
    telemetry = [d.message for d in items if isinstance(d.message, Telemetry)]
    devices = {r.device for t in telemetry for r in t.readings}
    assert devices == {"smoke-1", "temp-1", "gw1"}
    health = {r.metric for t in telemetry for r in t.readings if r.device == "gw1"}
    assert {"outbox_depth", "outbox_age", "dropped", "reconnects", "disk_free"} <= health
    seqs = sorted(d.message.seq for d in items if isinstance(d.message, Telemetry | DeviceEvent))
    assert seqs == list(range(len(seqs))), "per-boot seq must have no gaps"
    assert all(d.topic.channel is not Channel.STATE or d.topic.gateway == "gw1" for d in items)

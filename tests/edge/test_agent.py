"""The agent end to end against a real mosquitto: telemetry, birth and will, safety events."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

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


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_readings_birth_and_safety_event(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
    protocol: str,
) -> None:
    sub = subscriber_for(mosquitto, site)
    config = edge_config(
        tmp_path,
        mosquitto,
        site,
        drivers=[SIM],
        report={"mode": "period", "period": 0.01},
        broker={"protocol": protocol},
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


def test_last_will_marks_a_killed_agent_offline(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "site": site,
                "gateway": "gw-will",
                "state_dir": str(tmp_path / "state"),
                "broker": {"port": mosquitto.port, "keepalive": 5},
                "rules": {"enabled": False},
            }
        )
    )
    sub = subscriber_for(mosquitto, site)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        birth = sub.wait_for(lambda ms: any(isinstance(d.message, GatewayState) for d in ms))
        online = next(d.message for d in birth if isinstance(d.message, GatewayState))
        assert online.status is GatewayStatus.ONLINE
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    # no goodbye: the broker publishes the will after 1.5 x keepalive of silence
    sub.wait_for(lambda ms: len([d for d in ms if isinstance(d.message, GatewayState)]) >= 2, 15)
    late = subscriber_for(mosquitto, site)  # a newcomer gets the retained state
    retained = late.wait_for(lambda ms: any(isinstance(d.message, GatewayState) for d in ms))
    state = next(d.message for d in retained if isinstance(d.message, GatewayState))
    assert state.status is GatewayStatus.OFFLINE and state.reason == "will"
    assert state.boot_id == online.boot_id

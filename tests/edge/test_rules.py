"""Offline rules: the gateway runs the shared rule language itself when the cloud is away."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.actuators import SimulatedOutput
from edge.agent import EdgeAgent
from edge.drivers.simulated import SimulatedDriver
from edge.outbox import Lane
from edge.testing import Subscriber, edge_config, publish_downlink, running, until
from linli.services import Mosquitto
from protocols.codec import encode
from protocols.messages import AckStatus, DeviceEvent, GatewayConfig
from protocols.rules import parse_rules
from protocols.topics import Channel

pytestmark = pytest.mark.anyio

DEVICES = {
    "type": "simulated",
    "name": "sim",
    "interval": 0.05,
    "devices": [
        {"id": "smoke-1", "kind": "smoke", "seed": 1},
        {"id": "leak-1", "kind": "water_leak", "seed": 2},
    ],
}

LEAK_RULE = """
- id: leak-siren
  title: {zh: 漏水报警, en: Leak siren}
  severity: major
  subject: zone
  runs_on: both
  alert: false
  select: {kind: water_leak, metric: leak}
  when: {type: threshold, op: "==", value: true}
  then:
    - command: siren.on
      target: {kind: siren, scope: zone}
"""


def outputs(agent: EdgeAgent) -> tuple[SimulatedOutput, SimulatedOutput]:
    siren = agent.actuators.siren.output if agent.actuators.siren else None
    door = agent.actuators.doors["exit-1"].output
    assert isinstance(siren, SimulatedOutput) and isinstance(door, SimulatedOutput)
    return siren, door


def rule_events(sub: Subscriber) -> list[DeviceEvent]:
    return [
        d.message
        for d in sub.snapshot(Channel.EVENT)
        if isinstance(d.message, DeviceEvent) and d.message.event == "rule.command"
    ]


async def test_smoke_with_the_uplink_down_sounds_the_local_siren(
    tmp_path: Path,
    own_mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(own_mosquitto, site)
    own_mosquitto.stop()  # the uplink is down from the start
    config = edge_config(
        tmp_path,
        own_mosquitto,
        site,
        drivers=[DEVICES],
        rules={"enabled": True},  # the default pack's edge rules
        actuators={"doors": [{"id": "exit-1"}]},
    )
    agent = EdgeAgent(config)
    siren, door = outputs(agent)
    async with running(agent):
        driver = agent.drivers[0]
        assert isinstance(driver, SimulatedDriver)
        await until(lambda: agent.outbox.depth > 0)
        assert not agent.uplink.connected and siren.history == []
        driver.virtual["smoke-1"].force("smoke", True)
        await until(lambda: siren.value and door.value, 10, "siren on and exit released")
        assert agent.rules is not None
        executed = {(name, target, status) for _, name, target, status in agent.rules.executed}
        assert executed == {
            ("siren.on", None, AckStatus.OK),
            ("door.open", "exit-1", AckStatus.OK),
        }
        # recorded, in the safety lane, for the cloud to learn once the link is back
        await until(lambda: agent.outbox.depth_by_lane()[Lane.SAFETY] >= 3, 5, "recorded")
        own_mosquitto.start()
        await sub.await_for(lambda _: len(rule_events(sub)) == 2, 30)
    events = rule_events(sub)
    assert {e.attrs["command"] for e in events} == {"siren.on", "door.open"}
    assert all(e.attrs["rule"] == "edge-smoke-local" and e.attrs["offline"] for e in events)
    alarms = [
        d.message
        for d in sub.snapshot(Channel.EVENT)
        if isinstance(d.message, DeviceEvent) and d.message.event == "smoke.alarm"
    ]
    assert len(alarms) == 1


async def test_cloud_rules_run_locally_only_while_offline(
    tmp_path: Path,
    own_mosquitto: Mosquitto,
    site: str,
) -> None:
    config = edge_config(
        tmp_path,
        own_mosquitto,
        site,
        drivers=[DEVICES],
        rules={"enabled": True},
        actuators={"doors": [{"id": "exit-1"}]},
    )
    rules = parse_rules(LEAK_RULE).to_config()
    now = datetime.now(UTC)
    newer = GatewayConfig(version=2, issued_at=now, rules=rules)
    older = GatewayConfig(version=1, issued_at=now, rules=())
    publish_downlink(own_mosquitto, site, "gw1", Channel.CONFIG, encode(newer), retain=True)
    agent = EdgeAgent(config)
    siren, _ = outputs(agent)
    async with running(agent):
        await until(lambda: agent.gateway_config is not None, 10, "config applied")
        assert agent.gateway_config is not None and agent.gateway_config.version == 2
        publish_downlink(own_mosquitto, site, "gw1", Channel.CONFIG, encode(older), retain=True)
        driver = agent.drivers[0]
        assert isinstance(driver, SimulatedDriver)
        leak = driver.virtual["leak-1"]
        leak.force("leak", True)  # uplink up: the cloud runs this rule, the gateway does not
        await until(lambda: agent.rules is not None and agent.rules.actions_seen > 0, 10)
        assert siren.history == []
        assert agent.gateway_config.version == 2, "an older config is ignored"
        leak.force("leak", False)
        own_mosquitto.stop()
        await until(lambda: not agent.uplink.connected, 10)
        leak.force("leak", True)  # uplink down: the gateway acts itself
        await until(lambda: siren.value, 10, "siren on while offline")
        own_mosquitto.start()
    # the applied config survives a restart (no retained message needed to start offline)
    own_mosquitto.stop()
    again = EdgeAgent(config)
    async with again:
        assert again.gateway_config is not None and again.gateway_config.version == 2
        assert again.rules is not None and set(again.rules.runs_on) == {"leak-siren"}

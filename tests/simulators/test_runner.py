"""The virtual site on a real broker, no cloud: what the real agents put on the wire when the
scenario runner injects readings, access events, an outage and clock skew."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from linli.services import Mosquitto
from protocols.codec import decode
from protocols.messages import (
    AccessEvent,
    DeviceEvent,
    GatewayState,
    GatewayStatus,
    Message,
    Telemetry,
)
from protocols.topics import topic_filter
from simulators.runner import RunOptions, ScenarioRun
from simulators.scenario import SITES, parse_scenario

pytestmark = pytest.mark.anyio


class Recorder:
    """A plain paho subscriber recording every decoded message of one site, with its gateway."""

    def __init__(self, port: int, site: str) -> None:
        self.messages: list[tuple[str, Message]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic_filter(None, site), qos=1)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        decoded = decode(msg.topic, bytes(msg.payload), uplink=True)
        with self.lock:
            self.messages.append((decoded.topic.gateway, decoded.message))

    def of(self, gateway: str) -> list[Message]:
        with self.lock:
            return [m for g, m in self.messages if g == gateway]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


SCENARIO = {
    "name": "wire-check",
    "site": str(SITES / "demo.yaml"),
    "clock": {"settle": "2s"},
    "grace": "8s",
    "steps": [
        {"at": 0, "force": {"device": "smoke-b1-f2", "metric": "smoke", "value": True}},
        {"at": 0, "fault": {"kind": "clock_skew", "gateway": "gw-garage", "skew": 3600}},
        {"at": 1, "fault": {"kind": "outage", "gateway": "gw-b2", "duration": "9s"}},
        {"at": 1.5, "force": {"device": "sos-b2-102", "metric": "pressed", "value": True}},
        {
            "at": 2,
            "access": {"gateway": "gw-gate", "door": "gate-door", "kind": "forced_open",
                       "reason": "forced_open"},
        },
        {"at": 3, "fault": {"kind": "offline", "device": "hydrant-garage"}},
    ],
}  # fmt: skip


async def test_injected_events_outage_and_skew_reach_the_wire(
    mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    recorder = Recorder(mosquitto.port, site)
    try:
        scenario = parse_scenario(SCENARIO)
        options = RunOptions(mqtt_port=mosquitto.port, site=site, state_dir=tmp_path)
        run = ScenarioRun(scenario, options)
        started = time.time()
        report = await run.run()
        await anyio.sleep(1.0)
    finally:
        recorder.close()
    assert "no cloud given: alerts were not checked" in report.notes

    b1 = recorder.of("gw-b1")
    assert any(isinstance(m, DeviceEvent) and m.device == "smoke-b1-f2" for m in b1)

    # The outage: the broker published gw-b2's last will, then a new birth; the SOS pressed
    # during the outage arrived afterwards, replayed from the outbox and flagged historical.
    states = [m.status for m in recorder.of("gw-b2") if isinstance(m, GatewayState)]
    assert GatewayStatus.OFFLINE in states
    will = states.index(GatewayStatus.OFFLINE)
    assert GatewayStatus.ONLINE in states[will + 1 :]
    sos = [
        m for m in recorder.of("gw-b2") if isinstance(m, DeviceEvent) and m.device == "sos-b2-102"
    ]
    assert sos and sos[0].historical

    # Cheap camera mode: labelled simulated.
    access = [m for m in recorder.of("gw-gate") if isinstance(m, AccessEvent)]
    assert [a.attrs.get("simulated") for a in access] == [True]

    # Clock skew: the garage's readings are an hour ahead of the others.
    garage = [m for m in recorder.of("gw-garage") if isinstance(m, Telemetry)]
    ahead = [r for m in garage for r in m.readings if r.ts.timestamp() > started + 3000]
    assert ahead

    # The hydrant went offline at 3 s: nothing from it after that.
    assert run.sim.device("hydrant-garage").read(run.clock.now()) == []

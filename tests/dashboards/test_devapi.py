"""The developer console's API: the MQTT tap on a real broker, scenario runs as processes."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion

from dashboards import devapi
from dashboards.devapi import DevConsole, MqttTap
from linli.services import Mosquitto
from protocols.topics import Channel, topic

Login = Callable[[TestClient, str], None]


def _wait(predicate: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def console(small_app: FastAPI, mosquitto: Mosquitto, tmp_path: Path) -> DevConsole:
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "slow-burn.yaml").write_text("name: slow-burn\n")
    made = DevConsole(host="127.0.0.1", port=mosquitto.port, scenarios_dir=scenarios)
    small_app.state.dev_console = made
    return made


def test_tap_shows_broker_traffic_with_parsed_topics(
    client: TestClient, login: Login, console: DevConsole, mosquitto: Mosquitto, site: str
) -> None:
    login(client, "admin1")
    first = client.get("/api/dev/messages").json()
    _wait(lambda: client.get("/api/dev/messages").json()["connected"])
    publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{site}")
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    try:
        good = topic(site, "gw1", Channel.TELEMETRY)
        publisher.publish(
            good, b'{"v": 1, "hello": "\xe4\xbd\xa0\xe5\xa5\xbd"}', qos=1
        ).wait_for_publish(10)
        publisher.publish(good, b"\xff\xfe not json", qos=1).wait_for_publish(10)

        def mine() -> list[dict[str, object]]:
            body = client.get("/api/dev/messages", params={"after": first["last_seq"]}).json()
            return [m for m in body["messages"] if m["site"] == site]

        _wait(lambda: len(mine()) == 2)
    finally:
        publisher.loop_stop()
        publisher.disconnect()
    shown = mine()
    assert [m["channel"] for m in shown] == ["telemetry", "telemetry"]
    assert shown[0]["gateway"] == "gw1" and "你好" in str(shown[0]["payload"])
    assert "not JSON" in str(shown[1]["payload"])
    later = client.get("/api/dev/messages", params={"after": shown[-1]["seq"]}).json()
    assert all(m["seq"] > shown[-1]["seq"] for m in later["messages"])


def test_tap_ring_is_bounded_and_stops_when_idle(mosquitto: Mosquitto, site: str) -> None:
    tap = MqttTap("127.0.0.1", mosquitto.port, capacity=5, idle_s=1.0)
    tap.start()
    try:
        _wait(lambda: tap.connected)
        publisher = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub2-{site}")
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        for _ in range(12):
            publisher.publish(topic(site, "gw1", Channel.EVENT), b"{}", qos=1).wait_for_publish(10)
        publisher.loop_stop()
        publisher.disconnect()
        _wait(lambda: tap.since(0, 500)[0] >= 12)
        last, items = tap.since(0, 500)
        assert len(items) == 5 and items[-1].seq == last
        _wait(lambda: not tap.running, timeout=15)  # nobody polled for idle_s: it stopped
        assert not tap.connected
    finally:
        tap.stop()


def test_scenarios_start_and_stop_as_processes_audited(
    client: TestClient,
    login: Login,
    console: DevConsole,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    script = "import time; print('scenario running', flush=True); time.sleep(120)"
    seen: list[list[str]] = []

    def command(path: Path, host: str, port: int) -> list[str]:
        seen.append([str(path), host, str(port)])
        return [sys.executable, "-c", script]

    monkeypatch.setattr(devapi, "scenario_command", command)
    login(client, "admin1")
    assert client.get("/api/dev/scenarios").json() == [
        {"name": "slow-burn", "running": False, "returncode": None, "output_tail": ""}
    ]
    assert client.post("/api/dev/scenarios/nope/start").status_code == 404
    started = client.post("/api/dev/scenarios/slow-burn/start").json()
    assert started["running"] is True
    assert seen == [[str(console.scenarios_dir / "slow-burn.yaml"), "127.0.0.1", str(console.port)]]
    again = client.post("/api/dev/scenarios/slow-burn/start").json()  # already running: no second
    assert again["running"] is True and len(seen) == 1
    _wait(lambda: "scenario running" in client.get("/api/dev/scenarios").json()[0]["output_tail"])
    stopped = client.post("/api/dev/scenarios/slow-burn/stop").json()
    assert stopped["running"] is False and stopped["returncode"] is not None
    client.cookies.clear()
    login(client, "manager1")
    actions = [(e["action"], e["target"]) for e in client.get("/api/audit").json()]
    assert actions[:2] == [("scenario.stop", "slow-burn"), ("scenario.start", "slow-burn")]


def test_real_scenario_command_is_linli_sim_run() -> None:
    command = devapi.scenario_command(Path("/x/gas-leak.yaml"), "10.0.0.1", 1884)
    assert command[1:] == ["-m", "simulators", "run", "/x/gas-leak.yaml", "--mqtt", "10.0.0.1:1884"]
    from simulators.__main__ import _parser

    args = _parser().parse_args(command[3:])
    assert args.mqtt == ("10.0.0.1", 1884) and args.scenario == Path("/x/gas-leak.yaml")


def test_shipped_scenarios_are_listed(client: TestClient, login: Login) -> None:
    login(client, "admin1")
    names = [s["name"] for s in client.get("/api/dev/scenarios").json()]
    assert "fire-in-building" in names and "gas-leak" in names
    client.cookies.clear()
    login(client, "manager1")
    assert client.get("/api/dev/scenarios").status_code == 403

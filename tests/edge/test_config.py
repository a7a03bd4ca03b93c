"""Configuration: YAML and TOML, unknown keys and bad values fail naming the field; the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.__main__ import main
from edge.config import EdgeConfig, MqttProtocol, load_config, parse_config
from edge.errors import ConfigError
from edge.reporting import ReportMode

YAML = """
site: s1
gateway: gw-7
state_dir: /tmp/linli-edge-test
broker: {host: broker.example, port: 8883, protocol: "3.1.1", tls: true}
outbox: {budget_mb: 16, max_inflight: 500}
report: {mode: change, deadband: 0.5}
drivers:
  - type: simulated
    name: sim
    interval: 5
    devices:
      - {id: smoke-1, kind: smoke, seed: 1}
  - type: gpio
    name: gpio
    devices:
      - {id: sos-1, kind: sos, pin: 17, pull_up: true}
  - type: modbus
    name: bus
    transport: rtu
    serial_port: /dev/ttyUSB0
    devices:
      - id: heat-1
        kind: heat
        registers: [{metric: temperature, address: 3, scale: 0.1, signed: true}]
actuators:
  doors: [{id: door-1, open_seconds: 4}]
"""

TOML = """
site = "s1"
gateway = "gw-8"

[broker]
port = 1884

[[drivers]]
type = "serial"
name = "rs232"
url = "loop://"
devices = [{id = "t-1", kind = "temperature"}]
"""


def test_yaml_and_toml(tmp_path: Path) -> None:
    (tmp_path / "edge.yaml").write_text(YAML)
    (tmp_path / "edge.toml").write_text(TOML)
    y = load_config(tmp_path / "edge.yaml")
    assert y.broker.protocol is MqttProtocol.V311 and y.broker.tls
    assert y.report.mode is ReportMode.CHANGE
    assert [d.type for d in y.drivers] == ["simulated", "gpio", "modbus"]
    assert y.client_id() == "linli-edge-s1-gw-7"
    assert y.db_path == Path("/tmp/linli-edge-test/edge.db")
    t = load_config(tmp_path / "edge.toml")
    assert t.broker.port == 1884 and t.drivers[0].type == "serial"


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"colour": "blue"}, "colour"),
        ({"broker": {"port": 70000}}, "broker.port"),
        ({"broker": {"hots": "x"}}, "broker.hots"),
        ({"outbox": {"max_inflight": 65_000}}, "outbox.max_inflight"),
        ({"gateway": "gw/1"}, "gateway"),
        (
            {
                "drivers": [
                    {"type": "simulated", "name": "s", "devices": [{"id": "a", "kind": "x"}]}
                ]
            },
            "drivers.0.simulated.devices.0.kind",
        ),
        ({"drivers": [{"type": "zigbee", "name": "z"}]}, "drivers.0"),
    ],
)
def test_bad_config_names_the_field(patch: dict[str, object], field: str) -> None:
    data: dict[str, object] = {"site": "s1", "gateway": "gw1", **patch}
    with pytest.raises(ConfigError) as info:
        parse_config(data, "edge.yaml")
    assert info.value.field == field
    assert field in str(info.value)


def test_cross_field_rules() -> None:
    dup = {
        "site": "s1",
        "gateway": "gw1",
        "drivers": [
            {"type": "simulated", "name": "a", "devices": [{"id": "x", "kind": "smoke"}]},
            {"type": "simulated", "name": "b", "devices": [{"id": "x", "kind": "heat"}]},
        ],
    }
    with pytest.raises(ConfigError, match="device ids must be unique"):
        parse_config(dup)
    rtu = {
        "site": "s1",
        "gateway": "gw1",
        "drivers": [
            {
                "type": "modbus",
                "name": "m",
                "transport": "rtu",
                "devices": [
                    {"id": "h", "kind": "heat", "registers": [{"metric": "t", "address": 0}]}
                ],
            }
        ],
    }
    with pytest.raises(ConfigError, match="serial_port"):
        parse_config(rtu)


def test_cli_check_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "edge.yaml"
    good.write_text(YAML)
    assert main(["--config", str(good), "--check"]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: s1\ngateway: gw1\nbroker: {port: 0}\n")
    assert main(["--config", str(bad)]) == 2
    assert "broker.port" in capsys.readouterr().err
    assert main(["--config", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read config" in capsys.readouterr().err
    broken = tmp_path / "broken.toml"
    broken.write_text("site = \n")
    assert main(["--config", str(broken)]) == 2
    assert "not valid toml" in capsys.readouterr().err


def test_defaults_are_a_valid_config() -> None:
    config = EdgeConfig(site="s1", gateway="gw1")
    assert config.outbox.max_inflight <= 60_000
    assert config.rules.enabled and config.actuators.siren is not None


def test_the_example_in_docs_is_valid() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "edge.md").read_text()
    example = doc.split("### Example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = parse_config(yaml.safe_load(example), "docs/edge.md")
    assert [d.type for d in config.drivers] == ["gpio", "modbus", "serial"]
    assert config.actuators.doors[0].id == "exit-b3-east"

"""Site files → edge-agent configurations; the demo site; the scale-site generator."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud.registry.sitefile import SiteFile
from edge.config import SimulatedDevice, SimulatedDriverConfig
from edge.drivers.simulated import SimulatedDriver
from protocols.kinds import DeviceKind
from simulators.errors import SimulatorError
from simulators.scenario import SITES
from simulators.site import SiteOptions, gateway_config, load_site, site_configs
from simulators.sitegen import generate, scale_site, to_yaml


def test_demo_site_has_what_make_demo_needs() -> None:
    site = load_site(SITES / "demo.yaml")
    kinds = {d.kind for _, d in site.devices}
    for kind in (
        DeviceKind.SMOKE,
        DeviceKind.HEAT,
        DeviceKind.GAS,
        DeviceKind.WATER_LEAK,
        DeviceKind.DOOR_CONTACT,
        DeviceKind.PIR,
        DeviceKind.SOS,
        DeviceKind.EBIKE_CHARGER,
        DeviceKind.SIREN,
        DeviceKind.DOOR_LOCK,
        DeviceKind.CAMERA,
    ):
        assert kind in kinds, kind
    assert len(site.buildings) >= 3
    assert site == generate("demo", name=site.name)  # the committed file is the generator's


def test_every_gateway_becomes_an_edge_config_with_all_its_devices(tmp_path: Path) -> None:
    site = load_site(SITES / "demo.yaml")
    configs = site_configs(site, SiteOptions(port=1999, state_dir=tmp_path, site="t1"))
    assert [c.gateway for c in configs] == [g.id for g in site.gateways]
    for config, gw in zip(configs, site.gateways, strict=True):
        assert config.site == "t1"
        assert config.broker.port == 1999
        ids = sorted(d.id for drv in config.drivers for d in drv.devices)
        assert ids == sorted(d.id for d in gw.devices if d.kind is not DeviceKind.GATEWAY)
        assert gw.id in {d.id for d in gw.devices}  # the gateway is in the registry, not simulated


def test_drivers_group_devices_by_read_interval_and_build_virtual_devices(tmp_path: Path) -> None:
    site = load_site(SITES / "demo.yaml")
    config = gateway_config(site, "gw-b1", SiteOptions(state_dir=tmp_path))
    intervals = {d.name: d.interval for d in config.drivers}
    assert intervals["sim-5s"] == 5.0
    assert intervals["sim-60s"] == 60.0
    capped = gateway_config(site, "gw-b1", SiteOptions(state_dir=tmp_path, max_interval=1.0))
    assert {d.interval for d in capped.drivers} == {1.0}
    first = config.drivers[0]
    assert isinstance(first, SimulatedDriverConfig)
    driver = SimulatedDriver.from_config(first)
    assert driver.virtual  # real VirtualDevices, made by the edge driver from our config


def test_attrs_carry_simulator_parameters(tmp_path: Path) -> None:
    data = generate("p1", buildings=1, floors=1).model_dump(mode="json")
    dev = data["gateways"][0]["devices"][1]  # [0] is the gateway itself
    dev["attrs"] = {"seed": 42, "glitch_per_day": 3.0, "living_alone": True}
    config = gateway_config(SiteFile.model_validate(data), "gw-b1", SiteOptions(state_dir=tmp_path))
    specs = [d for drv in config.drivers for d in drv.devices if d.id == dev["id"]]
    spec = specs[0]
    assert isinstance(spec, SimulatedDevice)
    assert spec.seed == 42
    assert spec.params == {"glitch_per_day": 3.0}


def test_unknown_gateway_and_bad_file_are_clear_errors(tmp_path: Path) -> None:
    site = load_site(SITES / "demo.yaml")
    with pytest.raises(SimulatorError, match="no gateway 'gw-x'"):
        gateway_config(site, "gw-x", SiteOptions())
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "site: s1\ngateways:\n  - id: g1\n    devices:\n      - {id: d1, kind: toaster}\n"
    )
    with pytest.raises(SimulatorError, match="kind"):
        load_site(bad)


def test_scale_site_is_about_the_size_asked_and_round_trips_as_yaml() -> None:
    site = scale_site(10_000)
    assert 9_000 <= len(site.devices) <= 11_000
    small = generate("s2", buildings=1, floors=2)
    import yaml

    assert SiteFile.model_validate(yaml.safe_load(to_yaml(small))) == small

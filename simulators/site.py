"""A virtual site: a site file (``cloud.registry.sitefile``) turned into edge-agent configurations.

Each gateway of the site file becomes one :class:`edge.config.EdgeConfig` with simulated
drivers whose devices are built by :func:`simulators.devices.make_device` inside the real edge
agent. Devices are grouped into one driver per read interval (``sim-5s``, ``sim-60s``…), so a
PIR is read every few seconds and a water tank every few minutes, as on a real gateway.

Simulator knobs ride in a device's ``attrs`` in the site file: ``seed`` and any
:class:`simulators.devices.DeviceParams` field (``glitch_per_day``, ``base``, ``activity``…).
Other attrs (``living_alone``, ``evacuation``…) are for the cloud and are ignored here.
A device of kind ``gateway`` (the gateway itself, so that the registry knows its health
telemetry) is not simulated: the agent reports its own health.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloud.registry.sitefile import DeviceSpec, SiteFile, SiteFileError, load_site_file
from edge.config import EdgeConfig, parse_config
from edge.errors import ConfigError
from protocols.kinds import DeviceKind
from simulators.devices import DEFAULT_INTERVAL, DeviceParams
from simulators.errors import SimulatorError
from simulators.scenario import Scenario

_PARAM_KEYS = frozenset(DeviceParams.model_fields) - {"interval"}


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """How the virtual site runs. ``max_interval`` caps every read interval (scenarios want
    a smoke detector read every second, not every minute); ``report_period`` is how often an
    unchanged value is re-sent."""

    host: str = "127.0.0.1"
    port: int = 1883
    state_dir: Path = Path("linli-sim-state")
    seed: int = 0
    max_interval: float | None = None
    report_period: float = 300.0
    deadband: float = 0.2
    synchronous: str = "normal"
    health_interval: float = 60.0
    site: str | None = None  # run the site file under another site id (test isolation)
    reconnect_max: float = 30.0  # the agents' reconnect backoff cap (s)
    protocol: str = "5"  # MQTT version the agents speak: "5" or "3.1.1"


def device_seed(base: int, spec: DeviceSpec) -> int:
    raw = spec.attrs.get("seed")
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw
    return base ^ zlib.crc32(spec.id.encode())


def device_params(spec: DeviceSpec) -> dict[str, float | int | str | bool]:
    return {k: v for k, v in spec.attrs.items() if k in _PARAM_KEYS}


def interval_of(spec: DeviceSpec, options: SiteOptions) -> float:
    raw = spec.attrs.get("interval")
    interval = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0.0
    interval = interval or spec.report_interval_s or DEFAULT_INTERVAL[spec.kind]
    if options.max_interval is not None:
        interval = min(interval, options.max_interval)
    return interval


def gateway_config(sitefile: SiteFile, gateway_id: str, options: SiteOptions) -> EdgeConfig:
    """The edge-agent configuration of one gateway of the site file."""
    gateway = next((g for g in sitefile.gateways if g.id == gateway_id), None)
    if gateway is None:
        raise SimulatorError(f"no gateway {gateway_id!r} in the site file", sitefile.site)
    site = options.site or sitefile.site
    by_interval: dict[float, list[dict[str, Any]]] = defaultdict(list)
    doors: list[dict[str, Any]] = []
    sirens: list[str] = []
    for spec in gateway.devices:
        if spec.kind is DeviceKind.GATEWAY:
            continue  # the gateway itself: the agent reports its own health
        if spec.kind is DeviceKind.DOOR_LOCK:
            doors.append({"id": spec.id})
        if spec.kind is DeviceKind.SIREN:
            sirens.append(spec.id)
        by_interval[interval_of(spec, options)].append(
            {
                "id": spec.id,
                "kind": spec.kind.value,
                "seed": device_seed(options.seed, spec),
                "params": device_params(spec),
            }
        )
    drivers = [
        {"type": "simulated", "name": f"sim-{_label(iv)}", "interval": iv, "devices": devs}
        for iv, devs in sorted(by_interval.items())
    ]
    data: dict[str, Any] = {
        "site": site,
        "gateway": gateway.id,
        "state_dir": str(options.state_dir / site / gateway.id),
        "broker": {
            "host": options.host,
            "port": options.port,
            "reconnect_max": options.reconnect_max,
            "protocol": options.protocol,
            "reconnect_min": min(0.5, options.reconnect_max),
        },
        "outbox": {"synchronous": options.synchronous},
        "report": {
            "mode": "change_or_period",
            "deadband": options.deadband,
            "period": options.report_period,
        },
        "drivers": drivers,
        "actuators": (
            {"sirens": [{"id": s} for s in sirens], "doors": doors}
            if sirens
            else {"siren": None, "doors": doors}
        ),
        "health": {"interval": options.health_interval},
    }
    try:
        return parse_config(data, f"{sitefile.site}/{gateway.id}")
    except ConfigError as exc:
        raise SimulatorError(str(exc), f"gateway {gateway.id}") from exc


def _label(interval: float) -> str:
    text = f"{interval:g}".replace(".", "p")
    return f"{text}s"


def site_configs(sitefile: SiteFile, options: SiteOptions) -> list[EdgeConfig]:
    return [gateway_config(sitefile, g.id, options) for g in sitefile.gateways]


def load_site(path: str | Path) -> SiteFile:
    try:
        return load_site_file(path)
    except SiteFileError as exc:
        raise SimulatorError(str(exc)) from exc


def check_references(scenario: Scenario, sitefile: SiteFile) -> None:
    """Raise :class:`SimulatorError` naming the step if a scenario names an unknown device or
    gateway, or a gateway's own (not simulated) device."""
    devices = {d.id: d.kind for _, d in sitefile.devices}
    gateways = {g.id for g in sitefile.gateways}
    problems = []
    for where, what, ident in scenario.references():
        if what == "gateway" and ident not in gateways:
            problems.append(f"{where}: no gateway {ident!r} in site {sitefile.site!r}")
        elif what == "device" and ident not in devices:
            problems.append(f"{where}: no device {ident!r} in site {sitefile.site!r}")
        elif what == "device" and devices[ident] is DeviceKind.GATEWAY:
            problems.append(f"{where}: {ident!r} is a gateway's health, not a simulated device")
    wanted = {"released": DeviceKind.DOOR_LOCK, "on": DeviceKind.SIREN}
    for i, act in enumerate(scenario.expect_actuators):
        kind = devices.get(act.device)
        if kind is not None and kind is not wanted[act.state]:
            problems.append(
                f"expect_actuators.{i}: {act.device!r} is a {kind.value}, not a "
                f"{wanted[act.state].value} (state {act.state!r})"
            )
    if problems:
        raise SimulatorError("; ".join(problems), scenario.name)


def locate(sitefile: SiteFile) -> dict[str, tuple[str, DeviceSpec]]:
    """Device id → (gateway id, device spec)."""
    return {d.id: (gw, d) for gw, d in sitefile.devices}

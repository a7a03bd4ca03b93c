"""Generate site files: the starter demo community, and large sites for scale tests.

The output is a :class:`cloud.registry.sitefile.SiteFile` (the one site-file schema, owned by the
registry), so what the simulator runs is exactly what the cloud imports.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from cloud.registry.sitefile import SiteFile
from protocols.kinds import DeviceKind

# Per floor of a residential building: what a Chinese high-rise corridor typically has.
_FLOOR_DEVICES = (
    (DeviceKind.SMOKE, "smoke"),
    (DeviceKind.HEAT, "heat"),
    (DeviceKind.SIREN, "siren"),
    (DeviceKind.DOOR_LOCK, "evac"),  # evacuation door lock: released on confirmed fire
    (DeviceKind.DOOR_CONTACT, "stair"),
)


def _device(
    kind: DeviceKind,
    ident: str,
    *,
    building: str | None = None,
    floor: str | None = None,
    unit: str | None = None,
    zone: str | None = None,
    name: str | None = None,
    attrs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    d: dict[str, Any] = {"id": ident, "kind": kind.value}
    for key, value in (
        ("name", name),
        ("building", building),
        ("floor", floor),
        ("unit", unit),
        ("zone", zone),
        ("attrs", attrs),
    ):
        if value:
            d[key] = value
    return d


def _self(gateway: str) -> dict[str, Any]:
    """The gateway as a device of kind ``gateway``: its health telemetry then has a kind in the
    registry (the cloud's gateway-no-data rule selects it)."""
    return _device(DeviceKind.GATEWAY, gateway, name="gateway health")


def generate(
    site: str = "demo",
    *,
    buildings: int = 3,
    floors: int = 3,
    units_per_floor: int = 2,
    extra_per_unit: int = 0,
    with_garage: bool = True,
    with_gate: bool = True,
    name: str | None = None,
    auto_approve: bool = True,
) -> SiteFile:
    """A residential community: ``buildings`` × ``floors`` with a gateway per building.

    Every floor has smoke, heat, a siren, an evacuation door lock and a stair-door contact in
    its own zone ``bN-fM``. Floor 1 of each building also has a corridor e-bike charger, a gas
    detector and a water-leak sensor in unit 01, and a living-alone resident's PIR and SOS
    button in unit 02. ``extra_per_unit`` adds temperature/humidity/PIR/door sensors per unit
    (for scale tests). One gateway serves the garage (leak, parking, water tank, hydrant,
    manholes) and one the main gate (camera, lock and contact).
    """
    out_buildings: list[dict[str, Any]] = []
    zones: list[dict[str, Any]] = []
    gateways: list[dict[str, Any]] = []
    extra_kinds = (
        DeviceKind.TEMPERATURE,
        DeviceKind.HUMIDITY,
        DeviceKind.PIR,
        DeviceKind.DOOR_CONTACT,
    )
    for b in range(1, buildings + 1):
        bid = f"b{b}"
        floor_specs: list[dict[str, Any]] = []
        devices: list[dict[str, Any]] = []
        for f in range(1, floors + 1):
            fid = f"{bid}-f{f}"
            units = [f"{bid}-{f}{u:02d}" for u in range(1, units_per_floor + 1)]
            floor_specs.append(
                {
                    "id": fid,
                    "level": f,
                    "units": [{"id": u, "name": u.split("-")[1]} for u in units],
                }
            )
            zones.append(
                {"id": fid, "name": f"Building {b}, floor {f}", "building": bid, "floor": fid}
            )
            where: dict[str, Any] = {"building": bid, "floor": fid, "zone": fid}
            for kind, short in _FLOOR_DEVICES:
                devices.append(_device(kind, f"{short}-{fid}", **where))
            if f == 1 and units:
                devices.append(_device(DeviceKind.EBIKE_CHARGER, f"ebike-{fid}", **where))
                devices.append(_device(DeviceKind.GAS, f"gas-{units[0]}", unit=units[0], **where))
                devices.append(
                    _device(DeviceKind.WATER_LEAK, f"leak-{units[0]}", unit=units[0], **where)
                )
                resident = units[-1]
                devices.append(
                    _device(
                        DeviceKind.PIR,
                        f"pir-{resident}",
                        unit=resident,
                        attrs={"living_alone": True},
                        **where,
                    )
                )
                devices.append(_device(DeviceKind.SOS, f"sos-{resident}", unit=resident, **where))
            for u in units:
                for i in range(extra_per_unit):
                    kind = extra_kinds[i % len(extra_kinds)]
                    devices.append(_device(kind, f"{kind.value[:4]}{i}-{u}", unit=u, **where))
        devices.append(_device(DeviceKind.ELEVATOR, f"lift-{bid}", building=bid))
        out_buildings.append({"id": bid, "name": f"Building {b}", "floors": floor_specs})
        gateways.append(
            {
                "id": f"gw-{bid}",
                "name": f"Building {b} gateway",
                "building": bid,
                "devices": [_self(f"gw-{bid}"), *devices],
            }
        )
    if with_garage:
        zones.append({"id": "garage", "name": "Underground garage"})
        zones.append({"id": "grounds", "name": "Grounds"})
        g: dict[str, Any] = {"zone": "garage"}
        garage = [
            _device(DeviceKind.WATER_LEAK, "leak-garage-1", **g),
            _device(DeviceKind.WATER_LEAK, "leak-garage-2", **g),
            _device(DeviceKind.WATER_TANK, "tank-1", **g),
            _device(DeviceKind.HYDRANT, "hydrant-garage", **g),
            _device(DeviceKind.TEMPERATURE, "temp-garage", **g),
            _device(DeviceKind.HUMIDITY, "hum-garage", **g),
            *(_device(DeviceKind.PARKING, f"park-{i:02d}", **g) for i in range(1, 5)),
            _device(DeviceKind.MANHOLE, "manhole-1", zone="grounds"),
            _device(DeviceKind.MANHOLE, "manhole-2", zone="grounds"),
        ]
        gateways.append(
            {"id": "gw-garage", "name": "Garage gateway", "devices": [_self("gw-garage"), *garage]}
        )
    if with_gate:
        zones.append({"id": "gate", "name": "Main gate"})
        gate = [
            _device(DeviceKind.CAMERA, "cam-gate", zone="gate"),
            _device(DeviceKind.DOOR_LOCK, "gate-door", zone="gate"),
            _device(DeviceKind.DOOR_CONTACT, "gate-contact", zone="gate"),
        ]
        gateways.append(
            {"id": "gw-gate", "name": "Main gate gateway", "devices": [_self("gw-gate"), *gate]}
        )
    return SiteFile.model_validate(
        {
            "site": site,
            "name": name or f"{site} community",
            "auto_approve": auto_approve,
            "buildings": out_buildings,
            "zones": zones,
            "gateways": gateways,
        }
    )


def to_yaml(sitefile: SiteFile) -> str:
    data = sitefile.model_dump(mode="json", exclude_defaults=True)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def scale_site(devices: int, site: str = "scale", per_gateway: int = 500) -> SiteFile:
    """About ``devices`` devices, ``per_gateway`` per building gateway (for the 10k bench)."""
    per_floor_base = len(_FLOOR_DEVICES)
    floors = 10
    units = 4
    per_unit = max(0, (per_gateway // floors - per_floor_base - 1) // units)
    per_building = floors * (per_floor_base + units * per_unit) + 7
    buildings = max(1, math.ceil(devices / (per_building - 1)))  # - 1: the gateway itself
    return generate(
        site,
        buildings=buildings,
        floors=floors,
        units_per_floor=units,
        extra_per_unit=per_unit,
        with_garage=False,
        with_gate=False,
    )

"""Device kinds and the metrics each reports. Shared by drivers, simulators, registry and rules."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DeviceKind(StrEnum):
    SMOKE = "smoke"
    HEAT = "heat"
    TEMPERATURE = "temperature"
    HUMIDITY = "humidity"
    GAS = "gas"
    WATER_LEAK = "water_leak"
    DOOR_CONTACT = "door_contact"
    PIR = "pir"
    SOS = "sos"
    EBIKE_CHARGER = "ebike_charger"
    ELEVATOR = "elevator"
    WATER_TANK = "water_tank"
    HYDRANT = "hydrant"
    MANHOLE = "manhole"
    PARKING = "parking"
    CAMERA = "camera"
    SIREN = "siren"
    DOOR_LOCK = "door_lock"
    GATEWAY = "gateway"


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str | None
    binary: bool = False
    safety: bool = False  # a change to True is a safety event: never dropped, sent first


METRICS: dict[DeviceKind, tuple[Metric, ...]] = {
    DeviceKind.SMOKE: (Metric("smoke", None, binary=True, safety=True), Metric("battery", "%")),
    DeviceKind.HEAT: (Metric("temperature", "°C"), Metric("battery", "%")),
    DeviceKind.TEMPERATURE: (Metric("temperature", "°C"),),
    DeviceKind.HUMIDITY: (Metric("humidity", "%"),),
    DeviceKind.GAS: (Metric("ch4", "%LEL"), Metric("co", "ppm")),
    DeviceKind.WATER_LEAK: (Metric("leak", None, binary=True, safety=True),),
    DeviceKind.DOOR_CONTACT: (Metric("open", None, binary=True),),
    DeviceKind.PIR: (Metric("motion", None, binary=True),),
    DeviceKind.SOS: (Metric("pressed", None, binary=True, safety=True),),
    DeviceKind.EBIKE_CHARGER: (Metric("current", "A"), Metric("temperature", "°C")),
    DeviceKind.ELEVATOR: (Metric("floor", None), Metric("fault", None, binary=True)),
    DeviceKind.WATER_TANK: (Metric("level", "%"),),
    DeviceKind.HYDRANT: (Metric("pressure", "MPa"),),
    DeviceKind.MANHOLE: (Metric("tilt", "°"),),
    DeviceKind.PARKING: (Metric("occupied", None, binary=True),),
    DeviceKind.CAMERA: (),
    DeviceKind.SIREN: (Metric("on", None, binary=True),),
    DeviceKind.DOOR_LOCK: (Metric("locked", None, binary=True),),
    DeviceKind.GATEWAY: (
        Metric("outbox_depth", None),
        Metric("outbox_age", "s"),
        Metric("dropped", None),
        Metric("reconnects", None),
        Metric("cpu_temperature", "°C"),
        Metric("disk_free", "MB"),
    ),
}


def metric(kind: DeviceKind, name: str) -> Metric | None:
    return next((m for m in METRICS[kind] if m.name == name), None)

"""Virtual devices: realistic, deterministic signals for every device kind.

A :class:`VirtualDevice` is pure: what :meth:`VirtualDevice.read` returns is a function of the
device's seed, its parameters, the injected faults and overrides, and the ``now`` it is given
(epoch seconds, simulated or real). There is no I/O, no wall clock and no hidden random state, so
the same seed replays the same community, and 10,000 devices cost a few integer hashes per read.

Signals: daily temperature cycles (peak mid-afternoon, local time from ``tz_offset_h``), noise,
slow drift, battery decay, day/night activity for doors, PIR, parking and elevators, evening
e-bike charging sessions, and occasional sensor glitches (``glitch_per_day``). Faults are
injected with :meth:`VirtualDevice.inject` for a time window; scenario overrides with
:meth:`VirtualDevice.force`; actuator state (siren on, lock released) with
:meth:`VirtualDevice.actuate`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from protocols.kinds import METRICS, DeviceKind, Metric
from simulators.errors import SimulatorError

Value = float | bool
_MASK = (1 << 64) - 1
_DAY = 86400.0
_DEAD_BATTERY_GRACE = 600.0  # a dying device still sends its low battery for 10 minutes


class Fault(StrEnum):
    STUCK = "stuck"  # values freeze at what they were when the fault began
    DEAD_BATTERY = "dead_battery"  # battery reads ~0 %, then the device falls silent
    NOISE_BURST = "noise_burst"  # analog values get ``magnitude`` × their normal range of noise
    OFFLINE = "offline"  # the device reads nothing at all


class DeviceParams(BaseModel):
    """Per-device knobs; every field is optional and has a kind-specific default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tz_offset_h: float = Field(8.0, ge=-12, le=14, description="Local time offset from UTC, h")
    base: float | None = Field(None, description="Mean of the main analog metric")
    amplitude: float | None = Field(None, ge=0, description="Half the daily swing")
    noise: float | None = Field(None, ge=0, description="Noise amplitude of the main metric")
    drift_per_day: float | None = Field(None, description="Slow sensor drift per day")
    battery: float | None = Field(None, ge=0, le=100, description="Battery % at ``epoch``")
    battery_per_day: float = Field(0.05, ge=0, description="Battery decay, % per day")
    epoch: float = Field(1_767_225_600.0, description="When the battery was new (epoch s)")
    glitch_per_day: float = Field(0.0, ge=0, description="Spontaneous sensor glitches per day")
    activity: float = Field(1.0, ge=0, le=20, description="Scales door/PIR/parking activity")
    floors: Annotated[int, Field(ge=2, le=200)] = 18
    interval: float | None = Field(None, gt=0, description="How often a driver should read, s")


# How often a driver should poll each kind, in seconds: battery sensors report rarely, binary
# sensors are polled often so a change is seen quickly (a real one would interrupt).
DEFAULT_INTERVAL: dict[DeviceKind, float] = {
    DeviceKind.SMOKE: 60.0,
    DeviceKind.HEAT: 60.0,
    DeviceKind.TEMPERATURE: 60.0,
    DeviceKind.HUMIDITY: 60.0,
    DeviceKind.GAS: 30.0,
    DeviceKind.WATER_LEAK: 60.0,
    DeviceKind.DOOR_CONTACT: 5.0,
    DeviceKind.PIR: 5.0,
    DeviceKind.SOS: 10.0,
    DeviceKind.EBIKE_CHARGER: 30.0,
    DeviceKind.ELEVATOR: 10.0,
    DeviceKind.WATER_TANK: 300.0,
    DeviceKind.HYDRANT: 300.0,
    DeviceKind.MANHOLE: 300.0,
    DeviceKind.PARKING: 60.0,
    DeviceKind.CAMERA: 60.0,
    DeviceKind.SIREN: 60.0,
    DeviceKind.DOOR_LOCK: 60.0,
    DeviceKind.GATEWAY: 60.0,
}

# (lower, upper) physical bounds per metric name; glitches read the lower bound.
_BOUNDS: dict[str, tuple[float, float]] = {
    "temperature": (-40.0, 125.0),
    "cpu_temperature": (-40.0, 125.0),
    "humidity": (0.0, 100.0),
    "battery": (0.0, 100.0),
    "level": (0.0, 100.0),
    "ch4": (0.0, 100.0),
    "co": (0.0, 1000.0),
    "current": (0.0, 40.0),
    "pressure": (0.0, 2.0),
    "tilt": (0.0, 90.0),
    "floor": (-5.0, 200.0),
    "disk_free": (0.0, 1e7),
}


def _mix(x: int) -> int:
    """splitmix64 finaliser: a fast, well-spread 64-bit hash."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


def _unit(key: int, n: int) -> float:
    """A uniform number in [0, 1) that depends only on ``key`` and ``n``."""
    return _mix((key + (n & _MASK) * 0x9E3779B97F4A7C15) & _MASK) / 18446744073709551616.0


def _wobble(key: int, t: float) -> float:
    """Smooth noise in about [-1, 1]: interpolates random values 10 s apart."""
    i = math.floor(t / 10.0)
    f = t / 10.0 - i
    a = _unit(key, i) * 2 - 1
    b = _unit(key, i + 1) * 2 - 1
    return a + (b - a) * f


def _device_key(seed: int, device_id: str) -> int:
    digest = hashlib.blake2b(f"{seed}/{device_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _clamp(name: str, value: float) -> float:
    lo, hi = _BOUNDS.get(name, (-math.inf, math.inf))
    return round(min(hi, max(lo, value)), 3)


@dataclass(slots=True)
class _Window:
    start: float
    end: float | None
    magnitude: float
    metric: str | None

    def covers(self, now: float) -> bool:
        return now >= self.start and (self.end is None or now < self.end)


class VirtualDevice:
    """One simulated device. Cheap, pure and deterministic for a seed (see the module doc)."""

    __slots__ = (
        "_actuated",
        "_faults",
        "_forced",
        "_key",
        "_signals",
        "device_id",
        "interval",
        "kind",
        "metrics",
        "params",
    )

    def __init__(self, kind: DeviceKind, device_id: str, seed: int, params: DeviceParams) -> None:
        self.kind = kind
        self.device_id = device_id
        self.params = params
        self.metrics: tuple[Metric, ...] = METRICS[kind]
        self.interval: float = params.interval or DEFAULT_INTERVAL[kind]
        self._key = _device_key(seed, device_id)
        self._forced: dict[str, Value] = {}
        self._actuated: dict[str, Value] = {}
        self._faults: dict[Fault, _Window] = {}
        signals = _SIGNALS[kind]
        self._signals: tuple[tuple[str, bool, Callable[[VirtualDevice, float], Value]], ...] = (
            tuple((m.name, m.binary, signals[m.name]) for m in self.metrics)
        )

    def __repr__(self) -> str:
        return f"VirtualDevice({self.kind.value!r}, {self.device_id!r})"

    # ---- what a driver calls -----------------------------------------------------------------
    def read(self, now: float) -> list[tuple[str, Value]]:
        """The (metric, value) pairs the device reports at ``now`` (epoch seconds).

        Empty when the device is offline or its battery is dead: a silent device, as in life.
        """
        faults = self._faults
        if faults:
            offline = faults.get(Fault.OFFLINE)
            if offline is not None and offline.covers(now):
                return []
            dead = faults.get(Fault.DEAD_BATTERY)
            if dead is not None and dead.covers(now) and now >= dead.start + _DEAD_BATTERY_GRACE:
                return []
        out: list[tuple[str, Value]] = []
        for name, binary, signal in self._signals:
            forced = self._forced.get(name)
            if forced is not None:
                out.append((name, forced))
                continue
            out.append((name, self._value(name, binary, signal, now)))
        return out

    def force(self, metric: str, value: Value | None) -> None:
        """Override a metric until released with ``None`` (a scenario's injected reading)."""
        m = self._metric(metric)
        if value is None:
            self._forced.pop(metric, None)
            return
        self._forced[metric] = _check_value(m, value, self.device_id)

    def actuate(self, metric: str, value: Value) -> None:
        """Set an actuator's state (siren ``on``, lock ``locked``), as a command would."""
        m = self._metric(metric)
        self._actuated[metric] = _check_value(m, value, self.device_id)

    def inject(
        self,
        fault: Fault,
        *,
        start: float,
        end: float | None = None,
        magnitude: float = 5.0,
        metric: str | None = None,
    ) -> None:
        """Inject a fault from ``start`` until ``end`` (``None``: until cleared).

        ``metric`` limits STUCK and NOISE_BURST to one metric; ``magnitude`` scales a burst.
        """
        if end is not None and end <= start:
            raise SimulatorError(f"fault {fault.value}: end {end} is not after start {start}")
        if metric is not None:
            self._metric(metric)
        self._faults[fault] = _Window(start, end, magnitude, metric)

    def clear(self, fault: Fault | None = None) -> None:
        """Remove one fault, or every fault and override when ``fault`` is None."""
        if fault is None:
            self._faults.clear()
            self._forced.clear()
        else:
            self._faults.pop(fault, None)

    def faults(self, now: float) -> list[Fault]:
        """The faults active at ``now``."""
        return [f for f, w in self._faults.items() if w.covers(now)]

    # ---- internals ---------------------------------------------------------------------------
    def _metric(self, name: str) -> Metric:
        for m in self.metrics:
            if m.name == name:
                return m
        names = ", ".join(m.name for m in self.metrics) or "none"
        raise SimulatorError(
            f"a {self.kind.value} device has no metric {name!r} (it has: {names})", self.device_id
        )

    def _value(
        self, name: str, binary: bool, signal: Callable[[VirtualDevice, float], Value], now: float
    ) -> Value:
        actuated = self._actuated.get(name)
        if actuated is not None:
            return actuated
        faults = self._faults
        if faults:
            stuck = faults.get(Fault.STUCK)
            if stuck is not None and stuck.covers(now) and stuck.metric in (None, name):
                now = stuck.start
            if name == "battery":
                dead = faults.get(Fault.DEAD_BATTERY)
                if dead is not None and dead.covers(now):
                    return 1.0
        value = signal(self, now)
        if binary:
            return value
        assert isinstance(value, float)
        if faults:
            burst = faults.get(Fault.NOISE_BURST)
            if burst is not None and burst.covers(now) and burst.metric in (None, name):
                spread = max(abs(value) * 0.1, self.params.noise or 1.0)
                value += burst.magnitude * spread * (_unit(self._key ^ 0xB0B, int(now)) * 2 - 1)
        rate = self.params.glitch_per_day
        if rate and _unit(self._key ^ 0x61, int(now // 60)) < rate / 1440.0:
            value = _BOUNDS.get(name, (0.0, 0.0))[0]  # a disconnected probe reads its floor
        return _clamp(name, value)

    # helpers used by the signal functions below
    def hour(self, now: float) -> float:
        """Local hour of day in [0, 24)."""
        return ((now + self.params.tz_offset_h * 3600.0) % _DAY) / 3600.0

    def noise(self, salt: int, now: float, default: float) -> float:
        amp = self.params.noise if self.params.noise is not None else default
        return amp * _wobble(self._key ^ salt, now)

    def chance(self, salt: int, slot: int) -> float:
        return _unit(self._key ^ salt, slot)

    def drift(self, now: float, default_scale: float) -> float:
        rate = self.params.drift_per_day
        if rate is None:
            rate = (self.chance(0xD1, 0) * 2 - 1) * default_scale
        return rate * (now - self.params.epoch) / _DAY


def _check_value(m: Metric, value: Value, device_id: str) -> Value:
    if m.binary and not isinstance(value, bool):
        raise SimulatorError(f"metric {m.name!r} is binary: give true or false", device_id)
    if not m.binary:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise SimulatorError(f"metric {m.name!r} needs a finite number", device_id)
        return float(value)
    return value


# ---- signals ---------------------------------------------------------------------------------
def _daily(d: VirtualDevice, now: float, base: float, amplitude: float, peak_h: float) -> float:
    b = d.params.base if d.params.base is not None else base
    a = d.params.amplitude if d.params.amplitude is not None else amplitude
    return b + a * math.cos(2 * math.pi * (d.hour(now) - peak_h) / 24.0)


def _indoor_temperature(d: VirtualDevice, now: float) -> float:
    return _daily(d, now, 22.0, 1.5, 16.0) + d.noise(0x11, now, 0.15) + d.drift(now, 0.002)


def _outdoor_temperature(d: VirtualDevice, now: float) -> float:
    return _daily(d, now, 18.0, 5.0, 15.0) + d.noise(0x12, now, 0.3) + d.drift(now, 0.002)


def _humidity(d: VirtualDevice, now: float) -> float:
    return _daily(d, now, 60.0, 12.0, 4.0) + d.noise(0x13, now, 1.0)


def _battery(d: VirtualDevice, now: float) -> float:
    start = d.params.battery if d.params.battery is not None else 100.0 - 20.0 * d.chance(0xBA, 0)
    age_days = max(0.0, now - d.params.epoch) / _DAY
    return round(start - d.params.battery_per_day * age_days, 1)


def _activity(d: VirtualDevice, now: float) -> float:
    """Probability scale of human activity by local hour: busy mornings and evenings."""
    h = d.hour(now)
    if h < 6.0:
        p = 0.02
    elif h < 9.0:
        p = 0.35
    elif h < 17.0:
        p = 0.15
    elif h < 22.0:
        p = 0.3
    else:
        p = 0.06
    return min(1.0, p * d.params.activity)


def _binary_slot(d: VirtualDevice, now: float, salt: int, slot_s: float, on_s: float) -> bool:
    slot = int(now // slot_s)
    if d.chance(salt, slot) >= _activity(d, now):
        return False
    start = d.chance(salt + 1, slot) * (slot_s - on_s)
    offset = now - slot * slot_s
    return start <= offset < start + on_s


def _door_open(d: VirtualDevice, now: float) -> bool:
    return _binary_slot(d, now, 0x21, 120.0, 12.0)


def _motion(d: VirtualDevice, now: float) -> bool:
    return _binary_slot(d, now, 0x23, 60.0, 20.0)


def _parking(d: VirtualDevice, now: float) -> bool:
    h = d.hour(now)
    p = 0.9 if h < 7 or h >= 20 else 0.45
    return d.chance(0x25, int(now // 1800)) < min(1.0, p * d.params.activity)


def _elevator_floor(d: VirtualDevice, now: float) -> float:
    slot = int(now // 30)
    if d.chance(0x27, slot) >= _activity(d, now) * 2:
        return 1.0
    return float(1 + int(d.chance(0x28, slot) * d.params.floors))


def _charging_since(d: VirtualDevice, now: float) -> float | None:
    """Seconds since tonight's charging session began, or None when not charging.

    Each device plugs in between 18:00 and 22:00 local on most days, for 3–6 hours.
    """
    local = now + d.params.tz_offset_h * 3600.0
    for day in (int(local // _DAY), int(local // _DAY) - 1):
        if d.chance(0x31, day) > 0.8 * d.params.activity:
            continue
        start = day * _DAY + (18.0 + 4.0 * d.chance(0x32, day)) * 3600.0
        length = (3.0 + 3.0 * d.chance(0x33, day)) * 3600.0
        if start <= local < start + length:
            return local - start
    return None


def _charger_current(d: VirtualDevice, now: float) -> float:
    since = _charging_since(d, now)
    if since is None:
        return 0.0
    return 2.4 + d.noise(0x34, now, 0.05)


def _charger_temperature(d: VirtualDevice, now: float) -> float:
    ambient = _daily(d, now, 20.0, 3.0, 15.0) + d.noise(0x35, now, 0.2)
    since = _charging_since(d, now)
    if since is None:
        return ambient
    return ambient + 14.0 * (1.0 - math.exp(-since / 1800.0))


def _ch4(d: VirtualDevice, now: float) -> float:
    return max(0.0, 0.3 + d.noise(0x41, now, 0.3))


def _co(d: VirtualDevice, now: float) -> float:
    h = d.hour(now)
    cooking = 6.0 if (6.5 <= h < 7.5 or 11.5 <= h < 12.5 or 17.5 <= h < 19.0) else 0.0
    return max(0.0, 2.0 + cooking + d.noise(0x42, now, 1.0))


def _tank_level(d: VirtualDevice, now: float) -> float:
    # Drawn down through the day, refilled at night.
    return _daily(d, now, 72.0, 14.0, 4.0) + d.noise(0x51, now, 0.5)


def _hydrant_pressure(d: VirtualDevice, now: float) -> float:
    base = d.params.base if d.params.base is not None else 0.35
    return base + d.noise(0x52, now, 0.01) + d.drift(now, 0.0001)


def _manhole_tilt(d: VirtualDevice, now: float) -> float:
    base = d.params.base if d.params.base is not None else 0.6
    return abs(base + d.noise(0x53, now, 0.2))


def _false(d: VirtualDevice, now: float) -> bool:
    return False


def _true(d: VirtualDevice, now: float) -> bool:
    return True


def _gateway_cpu(d: VirtualDevice, now: float) -> float:
    return _daily(d, now, 48.0, 4.0, 15.0) + d.noise(0x61, now, 1.0)


def _zero(d: VirtualDevice, now: float) -> float:
    return 0.0


def _disk_free(d: VirtualDevice, now: float) -> float:
    return 20_000.0 - 0.5 * max(0.0, now - d.params.epoch) / _DAY


_SIGNALS: dict[DeviceKind, dict[str, Callable[[VirtualDevice, float], Value]]] = {
    DeviceKind.SMOKE: {"smoke": _false, "battery": _battery},
    DeviceKind.HEAT: {"temperature": _indoor_temperature, "battery": _battery},
    DeviceKind.TEMPERATURE: {"temperature": _outdoor_temperature},
    DeviceKind.HUMIDITY: {"humidity": _humidity},
    DeviceKind.GAS: {"ch4": _ch4, "co": _co},
    DeviceKind.WATER_LEAK: {"leak": _false},
    DeviceKind.DOOR_CONTACT: {"open": _door_open},
    DeviceKind.PIR: {"motion": _motion},
    DeviceKind.SOS: {"pressed": _false},
    DeviceKind.EBIKE_CHARGER: {"current": _charger_current, "temperature": _charger_temperature},
    DeviceKind.ELEVATOR: {"floor": _elevator_floor, "fault": _false},
    DeviceKind.WATER_TANK: {"level": _tank_level},
    DeviceKind.HYDRANT: {"pressure": _hydrant_pressure},
    DeviceKind.MANHOLE: {"tilt": _manhole_tilt},
    DeviceKind.PARKING: {"occupied": _parking},
    DeviceKind.CAMERA: {},
    DeviceKind.SIREN: {"on": _false},
    DeviceKind.DOOR_LOCK: {"locked": _true},
    DeviceKind.GATEWAY: {
        "outbox_depth": _zero,
        "outbox_age": _zero,
        "dropped": _zero,
        "reconnects": _zero,
        "cpu_temperature": _gateway_cpu,
        "disk_free": _disk_free,
    },
}


def make_device(
    kind: DeviceKind | str, device_id: str, *, seed: int = 0, **params: object
) -> VirtualDevice:
    """Create a virtual device. ``params`` are :class:`DeviceParams` fields; bad ones raise
    :class:`SimulatorError` naming the device and the field."""
    try:
        k = DeviceKind(kind)
    except ValueError:
        raise SimulatorError(f"unknown device kind {kind!r}", device_id) from None
    try:
        p = DeviceParams.model_validate(params)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(x) for x in first["loc"])
        raise SimulatorError(f"parameter {field}: {first['msg']}", device_id) from exc
    return VirtualDevice(k, device_id, seed, p)

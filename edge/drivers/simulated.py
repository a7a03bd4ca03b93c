"""Simulated devices: wraps the pure VirtualDevice models of ``simulators.devices``.

The device models belong to the simulators; this driver only reads them on the agent's clock.
``driver.virtual[device_id]`` exposes each VirtualDevice so a scenario runner can
``force(metric, value)`` a value (``None`` releases it), e.g. to set off a smoke alarm.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from edge.config import SimulatedDriverConfig
from edge.drivers.base import DeviceInfo, Driver, Sample
from edge.errors import ConfigError
from protocols.kinds import DeviceKind


class VirtualDevice(Protocol):
    """What the driver needs of a simulated device (see simulators.devices.VirtualDevice)."""

    device_id: str
    kind: DeviceKind

    def read(self, now: float) -> list[tuple[str, float | bool]]: ...

    def force(self, metric: str, value: float | bool | None) -> None: ...


DeviceFactory = Callable[..., VirtualDevice]


def load_factory(spec: str) -> DeviceFactory:
    """Import ``module:function``."""
    module_name, _, attr = spec.partition(":")
    try:
        module = importlib.import_module(module_name)
        factory: DeviceFactory = getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot load device model {spec!r}: {exc}", "model") from exc
    return factory


class SimulatedDriver(Driver):
    def __init__(self, name: str, interval: float, devices: Sequence[VirtualDevice]) -> None:
        super().__init__(name, interval)
        self.virtual: dict[str, VirtualDevice] = {d.device_id: d for d in devices}
        self._info = [DeviceInfo(d.device_id, DeviceKind(d.kind)) for d in devices]

    @classmethod
    def from_config(cls, config: SimulatedDriverConfig) -> SimulatedDriver:
        factory = load_factory(config.model)
        devices = []
        for spec in config.devices:
            params: dict[str, Any] = dict(spec.params)
            try:
                devices.append(factory(spec.kind, spec.id, seed=spec.seed, **params))
            except Exception as exc:  # a plugged-in model's own error type: report, don't crash
                raise ConfigError(f"simulated device {spec.id}: {exc}", spec.id) from exc
        return cls(config.name, config.interval, devices)

    @property
    def devices(self) -> list[DeviceInfo]:
        return self._info

    async def read(self, now: float) -> list[Sample]:
        out = []
        for info in self._info:
            for metric, value in self.virtual[info.id].read(now):
                out.append(Sample(info.id, info.kind, metric, value, now))
        return out

"""Binary sensors on GPIO inputs (gpiozero): smoke relays, door contacts, PIR, SOS buttons, leaks.

Each device is one input pin and one binary metric (default: the kind's first binary metric,
e.g. ``smoke`` for a smoke detector). ``pin_factory: mock`` uses gpiozero's MockFactory, so the
driver runs (and is tested) on a machine without GPIO; ``driver.factory.pin(17).drive_high()``
then plays the sensor.
"""

from __future__ import annotations

from typing import Any

from edge.config import GpioDriverConfig
from edge.drivers.base import DeviceInfo, Driver, Sample
from edge.errors import ConfigError, DriverError
from protocols.kinds import METRICS


def binary_metric(kind: Any, given: str | None, device: str) -> str:
    if given is not None:
        return given
    for m in METRICS[kind]:
        if m.binary:
            return m.name
    raise ConfigError(
        f"GPIO device {device}: kind {kind.value!r} has no binary metric; set 'metric'", device
    )


class GpioDriver(Driver):
    def __init__(self, config: GpioDriverConfig) -> None:
        super().__init__(config.name, config.interval)
        self.config = config
        self.factory: Any = None
        if config.pin_factory == "mock":
            from gpiozero.pins.mock import MockFactory

            self.factory = MockFactory()
        self._metrics = {d.id: binary_metric(d.kind, d.metric, d.id) for d in config.devices}
        self._info = [DeviceInfo(d.id, d.kind) for d in config.devices]
        self._inputs: dict[str, Any] = {}

    @classmethod
    def from_config(cls, config: GpioDriverConfig) -> GpioDriver:
        return cls(config)

    @property
    def devices(self) -> list[DeviceInfo]:
        return self._info

    async def open(self) -> None:
        from gpiozero import DigitalInputDevice
        from gpiozero.exc import GPIOZeroError

        try:
            for dev in self.config.devices:
                self._inputs[dev.id] = DigitalInputDevice(
                    dev.pin, pull_up=dev.pull_up, pin_factory=self.factory
                )
        except GPIOZeroError as exc:
            await self.close()
            raise DriverError(f"GPIO driver {self.name}: {exc}") from exc

    async def read(self, now: float) -> list[Sample]:
        out = []
        for dev in self.config.devices:
            value = bool(self._inputs[dev.id].value) != dev.invert
            out.append(Sample(dev.id, dev.kind, self._metrics[dev.id], value, now))
        return out

    async def close(self) -> None:
        for device in self._inputs.values():
            device.close()
        self._inputs.clear()

"""Drivers: simulated, GPIO, Modbus, serial — all behind :class:`edge.drivers.base.Driver`.

Each driver module is imported only when a config uses it, so a gateway without Modbus never
imports pymodbus.
"""

from __future__ import annotations

from edge.config import (
    DriverConfig,
    GpioDriverConfig,
    ModbusDriverConfig,
    SerialDriverConfig,
    SimulatedDriverConfig,
)
from edge.drivers.base import DeviceInfo, Driver, Sample

__all__ = ["DeviceInfo", "Driver", "Sample", "build_driver"]


def build_driver(config: DriverConfig) -> Driver:
    """Make the driver a config entry describes."""
    if isinstance(config, SimulatedDriverConfig):
        from edge.drivers.simulated import SimulatedDriver

        return SimulatedDriver.from_config(config)
    if isinstance(config, GpioDriverConfig):
        from edge.drivers.gpio import GpioDriver

        return GpioDriver.from_config(config)
    if isinstance(config, ModbusDriverConfig):
        from edge.drivers.modbus import ModbusDriver

        return ModbusDriver.from_config(config)
    if isinstance(config, SerialDriverConfig):
        from edge.drivers.serial import SerialDriver

        return SerialDriver.from_config(config)
    raise TypeError(f"no driver for {type(config).__name__}")

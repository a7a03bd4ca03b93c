"""Modbus TCP and RTU sensors (pymodbus): one register (or coil) per metric.

Per register: ``type`` holding/input (16-bit, ``signed`` optional, value = raw × scale + offset)
or coil/discrete (binary). A device that answers with a Modbus exception is logged and skipped
for this round (``errors`` counts it); a lost connection raises :class:`DriverError` and the
supervisor reopens the driver after a backoff.
"""

from __future__ import annotations

import logging
from typing import Any

from edge.config import ModbusDevice, ModbusDriverConfig, ModbusRegister, RegisterType
from edge.drivers.base import DeviceInfo, Driver, Sample
from edge.errors import DriverError

log = logging.getLogger(__name__)


def convert(register: ModbusRegister, raw: int | bool) -> float | bool:
    """A raw register (0..65535) or bit → the metric value. Pure."""
    if register.type in (RegisterType.COIL, RegisterType.DISCRETE):
        return bool(raw)
    value = int(raw)
    if register.signed and value >= 0x8000:
        value -= 0x10000
    return round(value * register.scale + register.offset, 6)


class ModbusDriver(Driver):
    def __init__(self, config: ModbusDriverConfig) -> None:
        super().__init__(config.name, config.interval)
        self.config = config
        self._info = [DeviceInfo(d.id, d.kind) for d in config.devices]
        self.client: Any = None
        self.errors = 0

    @classmethod
    def from_config(cls, config: ModbusDriverConfig) -> ModbusDriver:
        return cls(config)

    @property
    def devices(self) -> list[DeviceInfo]:
        return self._info

    async def open(self) -> None:
        from pymodbus import FramerType
        from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient

        cfg = self.config
        if cfg.transport == "tcp":
            self.client = AsyncModbusTcpClient(
                cfg.host, port=cfg.port, timeout=cfg.timeout, retries=1
            )
            where = f"{cfg.host}:{cfg.port}"
        else:
            assert cfg.serial_port is not None
            self.client = AsyncModbusSerialClient(
                cfg.serial_port,
                framer=FramerType.RTU,
                baudrate=cfg.baudrate,
                timeout=cfg.timeout,
                retries=1,
            )
            where = cfg.serial_port
        if not await self.client.connect():
            await self.close()
            raise DriverError(f"modbus driver {self.name}: cannot connect to {where}")

    async def close(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    async def read(self, now: float) -> list[Sample]:
        from pymodbus.exceptions import ConnectionException, ModbusIOException

        if self.client is None or not self.client.connected:
            raise DriverError(f"modbus driver {self.name}: not connected")
        out: list[Sample] = []
        for device in self.config.devices:
            for register in device.registers:
                try:
                    raw = await self._read_one(device, register)
                except (ConnectionException, ModbusIOException) as exc:
                    raise DriverError(f"modbus driver {self.name}: {exc}") from exc
                if raw is None:
                    continue
                out.append(
                    Sample(device.id, device.kind, register.metric, convert(register, raw), now)
                )
        return out

    async def _read_one(self, device: ModbusDevice, register: ModbusRegister) -> int | bool | None:
        client = self.client
        kw = {"count": 1, "device_id": device.unit}
        if register.type is RegisterType.HOLDING:
            rr = await client.read_holding_registers(register.address, **kw)
        elif register.type is RegisterType.INPUT:
            rr = await client.read_input_registers(register.address, **kw)
        elif register.type is RegisterType.COIL:
            rr = await client.read_coils(register.address, **kw)
        else:
            rr = await client.read_discrete_inputs(register.address, **kw)
        if rr.isError():
            self.errors += 1
            log.warning(
                "modbus %s: device %s (unit %d) %s %d: %s",
                self.name,
                device.id,
                device.unit,
                register.type.value,
                register.address,
                rr,
            )
            return None
        if register.type in (RegisterType.COIL, RegisterType.DISCRETE):
            return bool(rr.bits[0])
        return int(rr.registers[0])

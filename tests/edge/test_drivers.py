"""Drivers against real counterparts: gpiozero's mock pins, pty serial lines, pymodbus' servers."""

from __future__ import annotations

import asyncio
import os
import select
import socket
import threading
import tty
from collections.abc import Iterator

import pytest

from edge.config import (
    GpioDriverConfig,
    ModbusDriverConfig,
    ModbusRegister,
    RegisterType,
    SerialDriverConfig,
    SimulatedDriverConfig,
)
from edge.drivers import Sample, build_driver
from edge.drivers.gpio import GpioDriver
from edge.drivers.modbus import ModbusDriver, convert
from edge.drivers.serial import SerialDriver
from edge.drivers.simulated import SimulatedDriver
from edge.errors import DriverError
from protocols.kinds import DeviceKind

pytestmark = pytest.mark.anyio


async def test_simulated_driver_reads_every_metric_and_can_be_forced() -> None:
    config = SimulatedDriverConfig.model_validate(
        {
            "type": "simulated",
            "name": "sim",
            "devices": [
                {"id": "s-1", "kind": "smoke", "seed": 3},
                {"id": "g-1", "kind": "gas", "seed": 4},
            ],
        }
    )
    driver = build_driver(config)
    assert isinstance(driver, SimulatedDriver)
    async with driver:
        samples = await driver.read(1_800_000_000.0)
        assert {(s.device, s.metric) for s in samples} == {
            ("s-1", "smoke"),
            ("s-1", "battery"),
            ("g-1", "ch4"),
            ("g-1", "co"),
        }
        again = await driver.read(1_800_000_000.0)
        assert [s.value for s in again] == [s.value for s in samples], "deterministic"
        driver.virtual["s-1"].force("smoke", True)
        forced = await driver.read(1_800_000_001.0)
        assert next(s.value for s in forced if s.metric == "smoke") is True


async def test_gpio_driver_with_gpiozero_mock_pins() -> None:
    config = GpioDriverConfig.model_validate(
        {
            "type": "gpio",
            "name": "gpio",
            "pin_factory": "mock",
            "devices": [
                {"id": "smoke-1", "kind": "smoke", "pin": 17},
                {"id": "door-c", "kind": "door_contact", "pin": 27, "invert": True},
                {"id": "sos-1", "kind": "sos", "pin": 22, "pull_up": True},
            ],
        }
    )
    driver = build_driver(config)
    assert isinstance(driver, GpioDriver)
    async with driver:
        pins = {n: driver.factory.pin(n) for n in (17, 27, 22)}
        first = {s.device: (s.metric, s.value) for s in await driver.read(0.0)}
        assert first == {
            "smoke-1": ("smoke", False),
            "door-c": ("open", True),  # normally-closed contact, low = open
            "sos-1": ("pressed", False),  # pull-up: idle high
        }
        pins[17].drive_high()
        pins[27].drive_high()
        pins[22].drive_low()
        second = {s.device: s.value for s in await driver.read(1.0)}
        assert second == {"smoke-1": True, "door-c": False, "sos-1": True}


def test_gpio_kind_without_binary_metric_is_a_config_error() -> None:
    from edge.errors import ConfigError

    config = GpioDriverConfig.model_validate(
        {
            "type": "gpio",
            "name": "gpio",
            "pin_factory": "mock",
            "devices": [{"id": "t-1", "kind": "temperature", "pin": 5}],
        }
    )
    with pytest.raises(ConfigError, match="no binary metric"):
        GpioDriver(config)


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    os.close(master)
    os.close(slave)


async def read_lines(driver: SerialDriver, n: int, bad: int = 0) -> list[Sample]:
    """Read every 10 ms (as the agent would, only faster) until n samples and bad lines came."""
    out: list[Sample] = []
    for _ in range(300):
        out += await driver.read(1.0)
        if len(out) >= n and driver.bad_lines >= bad:
            break
        await asyncio.sleep(0.01)
    return out


async def test_serial_driver_over_a_pty(pty_pair: tuple[int, str]) -> None:
    master, name = pty_pair
    config = SerialDriverConfig.model_validate(
        {
            "type": "serial",
            "name": "rs232",
            "url": name,
            "devices": [{"id": "t-1", "kind": "temperature"}, {"id": "s-1", "kind": "smoke"}],
        }
    )
    driver = build_driver(config)
    assert isinstance(driver, SerialDriver)
    async with driver:
        assert await driver.read(0.0) == []
        os.write(
            master,
            b"t-1 temperature 21.5\n"
            b'{"device": "s-1", "metric": "smoke", "value": "on"}\n'
            b"t-1 humidity 40\n"  # temperature sensors have no humidity
            b"x-9 temperature 1\n"  # unknown device
            b"t-1 temperature nan\n"
            b"t-1 temperature 22",  # no newline yet
        )
        samples = await read_lines(driver, 2, bad=3)
        assert [(s.device, s.metric, s.value) for s in samples] == [
            ("t-1", "temperature", 21.5),
            ("s-1", "smoke", True),
        ]
        assert driver.bad_lines == 3
        os.write(master, b".25\n")
        (late,) = await read_lines(driver, 1)
        assert late.value == 22.25 and late.kind is DeviceKind.TEMPERATURE


async def test_serial_driver_open_failure_is_a_driver_error() -> None:
    config = SerialDriverConfig.model_validate(
        {
            "type": "serial",
            "name": "rs232",
            "url": "/dev/does-not-exist-linli",
            "devices": [{"id": "t-1", "kind": "temperature"}],
        }
    )
    with pytest.raises(DriverError, match="rs232"):
        await build_driver(config).open()


def test_modbus_register_conversion() -> None:
    reg = ModbusRegister(metric="temperature", address=0, signed=True, scale=0.1, offset=-1)
    assert convert(reg, 215) == pytest.approx(20.5)
    assert convert(reg, 0xFFF6) == pytest.approx(-2.0)
    unsigned = ModbusRegister(metric="level", address=0, scale=0.5)
    assert convert(unsigned, 0xFFF6) == pytest.approx(32763.0)
    coil = ModbusRegister(metric="smoke", address=0, type=RegisterType.COIL)
    assert convert(coil, True) is True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def test_modbus_tcp_against_pymodbus_server() -> None:
    from pymodbus.server import ModbusTcpServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    device = SimDevice(
        id=1,
        simdata=(
            [SimData(address=0, values=[True, False], datatype=DataType.BITS)],
            [SimData(address=0, values=[False, True], datatype=DataType.BITS)],
            [SimData(address=0, values=[215, -10], datatype=DataType.INT16)],
            [SimData(address=0, values=[55], datatype=DataType.UINT16)],
        ),
    )
    port = free_port()
    server = ModbusTcpServer(device, address=("127.0.0.1", port))
    await server.serve_forever(background=True)
    config = ModbusDriverConfig.model_validate(
        {
            "type": "modbus",
            "name": "bus",
            "port": port,
            "timeout": 2,
            "devices": [
                {
                    "id": "heat-1",
                    "kind": "heat",
                    "unit": 1,
                    "registers": [
                        {"metric": "temperature", "address": 0, "signed": True, "scale": 0.1},
                        {"metric": "battery", "address": 0, "type": "input"},
                    ],
                },
                {
                    "id": "smoke-1",
                    "kind": "smoke",
                    "unit": 1,
                    "registers": [
                        {"metric": "smoke", "address": 1, "type": "discrete"},
                        {"metric": "battery", "address": 40},  # not mapped: a Modbus exception
                    ],
                },
            ],
        }
    )
    driver = build_driver(config)
    assert isinstance(driver, ModbusDriver)
    try:
        async with driver:
            samples = await driver.read(5.0)
            got = {(s.device, s.metric): s.value for s in samples}
            assert got == {
                ("heat-1", "temperature"): pytest.approx(21.5),
                ("heat-1", "battery"): 55.0,
                ("smoke-1", "smoke"): True,
            }
            assert driver.errors == 1
            await server.shutdown()  # type: ignore[no-untyped-call]
            with pytest.raises(DriverError):
                for _ in range(3):
                    await driver.read(6.0)
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]


async def test_modbus_connect_failure_is_a_driver_error() -> None:
    config = ModbusDriverConfig.model_validate(
        {
            "type": "modbus",
            "name": "bus",
            "port": free_port(),
            "timeout": 0.5,
            "devices": [
                {"id": "h", "kind": "heat", "registers": [{"metric": "temperature", "address": 0}]}
            ],
        }
    )
    with pytest.raises(DriverError, match="cannot connect"):
        await build_driver(config).open()


@pytest.fixture
def linked_ttys() -> Iterator[tuple[str, str]]:
    """Two pty devices wired to each other (a null-modem cable, as socat would make)."""
    ends = []
    for _ in range(2):
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        ends.append((master, slave))
    (m1, s1), (m2, s2) = ends
    stop = threading.Event()

    def bridge() -> None:
        while not stop.is_set():
            ready, _, _ = select.select([m1, m2], [], [], 0.05)
            for fd in ready:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return
                os.write(m2 if fd == m1 else m1, data)

    thread = threading.Thread(target=bridge, name="null-modem", daemon=True)
    thread.start()
    yield os.ttyname(s1), os.ttyname(s2)
    stop.set()
    thread.join(2)
    for fd in (m1, s1, m2, s2):
        os.close(fd)


async def test_modbus_rtu_against_pymodbus_serial_server(linked_ttys: tuple[str, str]) -> None:
    from pymodbus.server import ModbusSerialServer
    from pymodbus.simulator import DataType, SimData, SimDevice

    server_tty, client_tty = linked_ttys
    device = SimDevice(
        id=3,
        simdata=(
            [SimData(address=0, values=[True], datatype=DataType.BITS)],
            [SimData(address=0, values=[False], datatype=DataType.BITS)],
            [SimData(address=0, values=[-42], datatype=DataType.INT16)],
            [SimData(address=0, values=[125], datatype=DataType.UINT16)],
        ),
    )
    server = ModbusSerialServer(device, port=server_tty, baudrate=19200)
    await server.serve_forever(background=True)
    config = ModbusDriverConfig.model_validate(
        {
            "type": "modbus",
            "name": "rs485",
            "transport": "rtu",
            "serial_port": client_tty,
            "baudrate": 19200,
            "timeout": 2,
            "devices": [
                {
                    "id": "ebike-1",
                    "kind": "ebike_charger",
                    "unit": 3,
                    "registers": [
                        {"metric": "temperature", "address": 0, "signed": True, "scale": 0.5},
                        {"metric": "current", "address": 0, "type": "input", "scale": 0.1},
                    ],
                }
            ],
        }
    )
    driver = build_driver(config)
    try:
        async with driver:
            samples = await driver.read(1.0)
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
    assert {s.metric: s.value for s in samples} == {"temperature": -21.0, "current": 12.5}

"""Door locks and the siren: simple outputs with command handlers.

An :class:`Output` is one on/off line — a GPIO relay (gpiozero) or a simulated one that records
its history. A :class:`Door` "on" means the lock is released; ``door.open`` relocks after
``open_seconds``. Handlers registered by :func:`register_actuators`:

``door.open``   target = door id (optional when the gateway has one door); params ``seconds``,
                or ``hold: true`` to stay released until ``door.lock`` (evacuation)
``door.lock``   target = door id
``siren.on``    target optional (no target: every siren of the gateway)
``siren.off``
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from edge.commands import CommandRegistry, Result
from edge.config import ActuatorsConfig, OutputConfig
from edge.errors import CommandRefused
from protocols.messages import Command

log = logging.getLogger(__name__)


class Output(Protocol):
    @property
    def value(self) -> bool: ...

    def set(self, on: bool) -> None: ...

    def close(self) -> None: ...


class SimulatedOutput:
    """An output with no hardware: remembers its state and every change (for tests, the sim)."""

    def __init__(self, name: str, clock: Callable[[], float] = time.time) -> None:
        self.name = name
        self.clock = clock
        self._value = False
        self.history: list[tuple[float, bool]] = []
        self.listeners: list[Callable[[bool], None]] = []

    @property
    def value(self) -> bool:
        return self._value

    def set(self, on: bool) -> None:
        self._value = on
        self.history.append((self.clock(), on))
        for listener in self.listeners:
            listener(on)

    def close(self) -> None:
        pass


class GpioOutput:
    """A relay on a GPIO pin (gpiozero ``DigitalOutputDevice``)."""

    def __init__(self, pin: int | str, *, active_high: bool = True, mock: bool = False) -> None:
        from gpiozero import DigitalOutputDevice

        factory = None
        if mock:
            from gpiozero.pins.mock import MockFactory

            factory = MockFactory()
        self.device = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=factory
        )

    @property
    def value(self) -> bool:
        return bool(self.device.value)

    def set(self, on: bool) -> None:
        if on:
            self.device.on()
        else:
            self.device.off()

    def close(self) -> None:
        self.device.close()


def make_output(name: str, config: OutputConfig) -> Output:
    if config.type == "gpio":
        assert config.pin is not None
        return GpioOutput(
            config.pin, active_high=config.active_high, mock=config.pin_factory == "mock"
        )
    return SimulatedOutput(name)


class Siren:
    def __init__(self, id_: str, output: Output) -> None:
        self.id = id_
        self.output = output

    def on(self) -> None:
        self.output.set(True)
        log.warning("siren %s ON", self.id)

    def off(self) -> None:
        self.output.set(False)
        log.info("siren %s off", self.id)


class Door:
    def __init__(self, id_: str, output: Output, open_seconds: float) -> None:
        self.id = id_
        self.output = output
        self.open_seconds = open_seconds
        self._relock: asyncio.TimerHandle | None = None

    @property
    def released(self) -> bool:
        return self.output.value

    def open(self, seconds: float | None = None, *, hold: bool = False) -> float | None:
        """Release the lock; relock after ``seconds`` (default ``open_seconds``) unless held."""
        self.output.set(True)
        if self._relock is not None:
            self._relock.cancel()
            self._relock = None
        if hold:
            return None
        duration = self.open_seconds if seconds is None else seconds
        self._relock = asyncio.get_running_loop().call_later(duration, self.lock)
        return duration

    def lock(self) -> None:
        if self._relock is not None:
            self._relock.cancel()
            self._relock = None
        self.output.set(False)


class Actuators:
    """The gateway's siren and doors, and their command handlers."""

    def __init__(self, sirens: dict[str, Siren], doors: dict[str, Door]) -> None:
        self.sirens = sirens
        self.doors = doors

    @classmethod
    def from_config(cls, config: ActuatorsConfig) -> Actuators:
        sirens = {s.id: Siren(s.id, make_output(s.id, s.output)) for s in config.siren_list()}
        doors = {
            d.id: Door(d.id, make_output(d.id, d.output), d.open_seconds) for d in config.doors
        }
        return cls(sirens, doors)

    @property
    def siren(self) -> Siren | None:
        """The first siren (gateways with one siren), or None."""
        return next(iter(self.sirens.values()), None)

    def close(self) -> None:
        for door in self.doors.values():
            door.lock()
            door.output.close()
        for siren in self.sirens.values():
            siren.output.close()

    def _door(self, command: Command) -> Door:
        if command.target is None:
            if len(self.doors) == 1:
                return next(iter(self.doors.values()))
            raise CommandRefused("target door required")
        door = self.doors.get(command.target)
        if door is None:
            raise CommandRefused(f"unknown door {command.target!r}")
        return door

    def _sirens(self, command: Command) -> list[Siren]:
        """The target siren, or every siren of the gateway when there is no target."""
        if not self.sirens:
            raise CommandRefused("this gateway has no siren")
        if command.target is None:
            return list(self.sirens.values())
        siren = self.sirens.get(command.target)
        if siren is None:
            raise CommandRefused(f"unknown siren {command.target!r}")
        return [siren]

    async def door_open(self, command: Command) -> Result:
        door = self._door(command)
        seconds = command.params.get("seconds")
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, float)):
            raise CommandRefused("param seconds must be a number")
        if seconds is not None and not 0 < seconds <= 600:
            raise CommandRefused("param seconds must be in (0, 600]")
        hold = command.params.get("hold") is True
        duration = door.open(seconds, hold=hold)
        return {"door": door.id, "released": True, "seconds": duration}

    async def door_lock(self, command: Command) -> Result:
        door = self._door(command)
        door.lock()
        return {"door": door.id, "released": False}

    async def siren_on(self, command: Command) -> Result:
        return self._switch(self._sirens(command), on=True)

    async def siren_off(self, command: Command) -> Result:
        return self._switch(self._sirens(command), on=False)

    @staticmethod
    def _switch(sirens: list[Siren], *, on: bool) -> Result:
        for siren in sirens:
            if on:
                siren.on()
            else:
                siren.off()
        return {"siren": ",".join(s.id for s in sirens), "on": on}

    def register(self, registry: CommandRegistry) -> None:
        registry.register("door.open", self.door_open)
        registry.register("door.lock", self.door_lock)
        registry.register("siren.on", self.siren_on)
        registry.register("siren.off", self.siren_off)

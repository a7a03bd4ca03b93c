"""The one small interface every driver implements.

A driver owns some hardware (or simulated devices) and turns it into :class:`Sample` values:

    async with driver:                 # open the port / bus / pins; close on exit
        samples = await driver.read(now)   # every ``interval`` seconds

``read`` returns the current value of each metric of each device (or, for event-style links
such as a serial line, what arrived since the last call). Deciding what is *reported* is not a
driver's job: the agent's :class:`~edge.reporting.Reporter` does that, the same for all drivers.
A driver raises :class:`~edge.errors.DriverError` (or an ``OSError``) when its hardware fails;
the supervisor closes it and opens it again after a backoff.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType

from protocols.kinds import DeviceKind


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    kind: DeviceKind


@dataclass(frozen=True, slots=True)
class Sample:
    device: str
    kind: DeviceKind
    metric: str
    value: float | bool
    ts: float  # seconds since the epoch


class Driver(ABC):
    """Base class: subclasses implement :meth:`open`, :meth:`read` and :meth:`close`."""

    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval

    @property
    @abstractmethod
    def devices(self) -> list[DeviceInfo]:
        """The devices this driver reads."""

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire the hardware. Default: nothing to do."""

    @abstractmethod
    async def read(self, now: float) -> list[Sample]:
        """Read every device once; ``now`` is the wall-clock time to stamp samples with."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the hardware. Must not raise. Default: nothing to do."""

    async def __aenter__(self) -> Driver:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

"""A simulated device whose readings carry their own identity: a counter.

Plugged into the edge agent's ``simulated`` driver as ``model: tests.chaos.counter:make_counter``.
Each read reports ``base + n`` for n = 0, 1, 2, … on the kind's first metric, so a reading is
identified by (device, value): a missing number is a lost reading, a repeated one a duplicate.
The test gives every agent boot its own ``base`` (a multiple of :data:`BOOT_SPAN`).
"""

from __future__ import annotations

from protocols.kinds import METRICS, DeviceKind

BOOT_SPAN = 1_000_000
"""Counter values of one boot: ``base .. base + BOOT_SPAN - 1``."""


class CounterDevice:
    def __init__(self, kind: DeviceKind, device_id: str, base: int) -> None:
        self.kind = kind
        self.device_id = device_id
        self.metric = METRICS[kind][0].name
        self.base = base
        self.next = 0

    def read(self, now: float) -> list[tuple[str, float | bool]]:
        value = float(self.base + self.next)
        self.next += 1
        return [(self.metric, value)]

    def force(self, metric: str, value: float | bool | None) -> None:
        """Counters are not forced (the driver's protocol asks for the method)."""


def make_counter(
    kind: DeviceKind | str, device_id: str, *, seed: int = 0, base: int = 0
) -> CounterDevice:
    if base % BOOT_SPAN:
        raise ValueError(f"base must be a multiple of {BOOT_SPAN}")
    return CounterDevice(DeviceKind(kind), device_id, base)

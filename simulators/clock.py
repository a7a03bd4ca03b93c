"""The simulated clock: real time, or accelerated time.

Every reading a simulated gateway makes carries a timestamp from this clock, so a scenario that
covers 24 hours can run in a minute:

``realtime``  sim = real. For short scenarios (seconds to minutes) and the demo.
``ahead``     sim starts at real "now" and runs ``speed`` times faster, so timestamps run
              ahead of the wall clock.

How the cloud sees accelerated time: ingest stores the readings with their (future) event
times and every rule that works on event time (thresholds, durations, windows, correlation)
sees the accelerated history as it would a real one. Timers that fire on *silence* (no-data,
e.g. "no activity for 24 h") are driven by the cloud rules runner's tick, which uses the wall
clock; a test that runs the cloud in-process drives that tick with the simulated clock
(``ScenarioRun(..., on_tick=lambda t: runner.tick(utc(t)))``). Against a remote cloud an
accelerated silence is not seen until the wall clock gets there, and the report says so.

The clock is a pure function of the real monotonic time it is given (:meth:`SimClock.at`), so it
is tested without sleeping; :meth:`SimClock.now` reads ``time.time`` once at start and
``time.monotonic`` after that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

from simulators.errors import SimulatorError


class ClockMode(StrEnum):
    REALTIME = "realtime"
    AHEAD = "ahead"


@dataclass(frozen=True, slots=True)
class SimClock:
    """Real monotonic seconds → simulated epoch seconds: ``sim0 + speed·(mono − mono0)``."""

    sim0: float
    mono0: float
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise SimulatorError(f"clock speed must be > 0, not {self.speed}")

    @classmethod
    def start(
        cls,
        mode: ClockMode = ClockMode.REALTIME,
        *,
        speed: float = 1.0,
        wall: float | None = None,
        mono: float | None = None,
    ) -> SimClock:
        """A clock starting now (or at ``wall``/``mono``, for tests)."""
        wall = time.time() if wall is None else wall
        mono = time.monotonic() if mono is None else mono
        if mode is ClockMode.REALTIME:
            return cls(wall, mono, 1.0)
        return cls(wall, mono, speed)

    def at(self, mono: float) -> float:
        """Simulated epoch seconds at real monotonic time ``mono``."""
        return self.sim0 + (mono - self.mono0) * self.speed

    def now(self) -> float:
        return self.at(time.monotonic())

    def real_delay(self, sim_seconds: float) -> float:
        """Real seconds that ``sim_seconds`` of simulated time take."""
        return sim_seconds / self.speed

    def mono_of(self, sim: float) -> float:
        """The real monotonic time at which the clock reads ``sim``."""
        return self.mono0 + (sim - self.sim0) / self.speed

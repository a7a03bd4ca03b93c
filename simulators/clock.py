"""The simulated clock: real time, accelerated time, or accelerated time that ends at "now".

Every reading a simulated gateway makes carries a timestamp from this clock, so a scenario that
covers 24 hours can run in a minute. Three ways to map real time to simulated time:

``realtime``  sim = real. For short scenarios (seconds to minutes) and the demo.
``ahead``     sim starts at real "now" and runs ``speed`` times faster: timestamps run into
              the future.
``catch_up``  sim starts ``span`` seconds before the real end of the run and runs ``speed``
              times faster, so that it meets real time exactly when the run ends: timestamps are
              in the past while the run goes, never in the future, and at the end the event
              times and the cloud's wall clock agree. This is the mode for long scenarios
              against a cloud whose timers (no-data, escalation) run on the wall clock.

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
    CATCH_UP = "catch_up"


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
        span: float = 0.0,
        wall: float | None = None,
        mono: float | None = None,
    ) -> SimClock:
        """A clock starting now. ``span`` is the simulated length of the run (``catch_up``)."""
        wall = time.time() if wall is None else wall
        mono = time.monotonic() if mono is None else mono
        if mode is ClockMode.REALTIME:
            return cls(wall, mono, 1.0)
        if mode is ClockMode.AHEAD:
            return cls(wall, mono, speed)
        if span < 0:
            raise SimulatorError(f"clock span must be >= 0, not {span}")
        real_length = span / speed
        return cls(wall + real_length - span, mono, speed)

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

"""The simulated clock as a pure mapping from real to simulated time."""

from __future__ import annotations

import pytest

from simulators.clock import ClockMode, SimClock
from simulators.errors import SimulatorError

WALL = 1_780_000_000.0


def test_realtime_is_the_wall_clock() -> None:
    c = SimClock.start(ClockMode.REALTIME, wall=WALL, mono=100.0)
    assert c.at(110.0) == WALL + 10.0


def test_ahead_runs_faster_from_now() -> None:
    c = SimClock.start(ClockMode.AHEAD, speed=60, wall=WALL, mono=100.0)
    assert c.at(101.0) == WALL + 60.0
    assert c.real_delay(3600.0) == 60.0
    assert c.mono_of(WALL + 120.0) == 102.0


def test_bad_speed_is_refused() -> None:
    with pytest.raises(SimulatorError, match="speed"):
        SimClock(WALL, 0.0, 0.0)

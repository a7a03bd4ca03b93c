"""Supervised tasks: a fault restarts one task after a capped, jittered backoff.

``supervise`` is the only place in the agent that catches ``Exception`` broadly: it is the
boundary that keeps one faulty driver from taking the outbox or the uplink down with it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential delay with "equal jitter": attempt n waits in [d/2, d], d = initial·2ⁿ ≤ max."""

    initial: float = 0.5
    maximum: float = 30.0

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        base = min(self.maximum, self.initial * float(2 ** min(attempt, 30)))
        return float(base / 2 + rng() * base / 2)


@dataclass
class TaskStats:
    """What the supervisor knows about one named task (the health report reads it)."""

    restarts: int = 0
    last_error: str | None = None
    running: bool = False
    errors: list[str] = field(default_factory=list)


async def supervise(
    name: str,
    run: Callable[[], Awaitable[None]],
    backoff: Backoff,
    stats: TaskStats,
    *,
    healthy_after: float = 60.0,
) -> None:
    """Run ``run()`` until it returns; restart it after each fault (not after cancellation).

    The backoff resets once an attempt has run for ``healthy_after`` seconds.
    """
    attempt = 0
    while True:
        started = time.monotonic()
        stats.running = True
        try:
            await run()
        except asyncio.CancelledError:
            stats.running = False
            raise
        except Exception as exc:  # the supervisor boundary: log, count, restart
            stats.running = False
            stats.restarts += 1
            stats.last_error = f"{type(exc).__name__}: {exc}"
            stats.errors = [*stats.errors[-9:], stats.last_error]
            if time.monotonic() - started >= healthy_after:
                attempt = 0
            delay = backoff.delay(attempt)
            attempt += 1
            log.error(
                "task %s failed (%s); restart %d in %.1fs",
                name,
                stats.last_error,
                stats.restarts,
                delay,
                exc_info=exc,
            )
            await asyncio.sleep(delay)
        else:
            stats.running = False
            log.info("task %s finished", name)
            return

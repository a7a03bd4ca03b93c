"""Background loops supervised inside the app's TaskGroup: a crashed loop restarts with a
capped, jittered backoff instead of taking the API down. The one catch-all of the cloud."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def supervised(
    name: str,
    run: Callable[[], Awaitable[None]],
    failures: dict[str, int],
    *,
    max_backoff_s: float = 30.0,
) -> None:
    delay = 0.5
    while True:
        try:
            await run()
            return
        except asyncio.CancelledError:
            raise
        except Exception:  # supervisor: log, count, restart; narrow catches live in the loops
            failures[name] = failures.get(name, 0) + 1
            wait = min(delay, max_backoff_s) * (0.5 + random.random() / 2)
            log.exception("task %s crashed (%d); restarting in %.1fs", name, failures[name], wait)
            await asyncio.sleep(wait)
            delay *= 2

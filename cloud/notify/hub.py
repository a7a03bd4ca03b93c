"""Fan-out of live events (alerts, access events, notifications) to WebSocket subscribers.

Each subscriber has a bounded queue; a subscriber that cannot keep up loses its oldest events
(counted) rather than slowing everyone else down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from cloud.notify.loop import LoopBound

log = logging.getLogger(__name__)


class Subscription:
    def __init__(self, hub: Hub, maxsize: int, topics: frozenset[str] | None) -> None:
        self.hub = hub
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.topics = topics
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:
        if self.topics is not None and event.get("type") not in self.topics:
            return
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()


class Hub(LoopBound):
    """``hub.publish({"type": "alert", ...})`` from any thread; subscribers read a queue."""

    def __init__(self, maxsize: int = 1000) -> None:
        super().__init__()
        self._subs: set[Subscription] = set()
        self._maxsize = maxsize
        self.published = 0

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def publish(self, event: dict[str, Any]) -> None:
        self._in_loop(lambda: self._publish(event))

    def _publish(self, event: dict[str, Any]) -> None:
        self.published += 1
        for sub in tuple(self._subs):
            sub.offer(event)

    @contextlib.asynccontextmanager
    async def subscribe(self, topics: frozenset[str] | None = None) -> AsyncIterator[Subscription]:
        sub = Subscription(self, self._maxsize, topics)
        self._subs.add(sub)
        try:
            yield sub
        finally:
            self._subs.discard(sub)
            if sub.dropped:
                log.warning("stream subscriber lost %d events (too slow)", sub.dropped)

"""A bounded hand-over between the MQTT network thread and the storing loop.

``put`` blocks while the buffer is full. Because it is called from the MQTT client's message
callback, a full buffer stops the client from reading its socket: TCP back-pressure reaches
the broker, which keeps the messages (unacknowledged) instead of this process dropping them.

Fast lane. A delivery marked ``urgent`` (the receiver marks the event and access channels:
smoke alarms, SOS, forced doors) is taken in the next batch ahead of the telemetry queued before
it — together with every earlier delivery *of its own gateway*, in order. So the rules still see
each gateway's messages (hence each device's observations) in arrival order; only the order
between different gateways changes, which no rule depends on (see cloud/rules/runner.py).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from protocols.errors import ProtocolError
from protocols.topics import parse_topic

MAX_BUFFER_BYTES = 64 * 1024 * 1024
"""Payload bytes held between receipt and storage, at most (besides ``queue_bound``)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker delivered it, not yet stored or acknowledged."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    connection: int = 0  # which connection delivered it: acks only go back on that one
    urgent: bool = False  # fast lane: taken ahead of other gateways' queued telemetry


def _gateway_of(d: Delivery) -> tuple[str, str] | str:
    """The (site, gateway) whose order must be kept; a bad topic is its own group."""
    try:
        t = parse_topic(d.topic)
    except ProtocolError:
        return d.topic
    return t.site, t.gateway


class BoundedBuffer:
    """At most ``max_items`` deliveries and ``max_bytes`` payload bytes (one item may exceed)."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[Delivery] = deque()
        self._bytes = 0
        self._urgent = 0  # urgent deliveries in _items
        self._cond = threading.Condition()
        self.high_water_items = 0
        self.high_water_bytes = 0
        self.fast_lane_batches = 0  # batches that took urgent deliveries ahead of others

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def _full(self, size: int) -> bool:
        if not self._items:
            return False
        return len(self._items) >= self.max_items or self._bytes + size > self.max_bytes

    def put(self, item: Delivery, stopping: Callable[[], bool]) -> bool:
        """Block until there is room (True) or ``stopping()`` turns true (False, not added)."""
        size = len(item.payload)
        with self._cond:
            while self._full(size):
                if stopping():
                    return False
                self._cond.wait(0.25)
            self._items.append(item)
            self._bytes += size
            self._urgent += item.urgent
            self.high_water_items = max(self.high_water_items, len(self._items))
            self.high_water_bytes = max(self.high_water_bytes, self._bytes)
            self._cond.notify_all()
            return True

    def wake(self) -> None:
        """Make a waiting :meth:`take` re-check its ``ready`` condition."""
        with self._cond:
            self._cond.notify_all()

    def take(
        self,
        max_items: int,
        linger_s: float,
        wait_s: float,
        ready: Callable[[], bool] | None = None,
        max_bytes: int | None = None,
    ) -> list[Delivery]:
        """Up to ``max_items`` and ``max_bytes`` of payload (at least one delivery): waits
        ``wait_s`` for a first one, then for more until the batch is full, ``ready()`` turns
        true (the writer is free: group commit) or ``linger_s`` passed. An urgent delivery
        ends the wait at once and goes first (see the module doc)."""
        limit = self.max_bytes if max_bytes is None else max_bytes
        with self._cond:
            deadline = time.monotonic() + wait_s
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            linger_end = time.monotonic() + linger_s
            while len(self._items) < max_items and self._bytes < limit and not self._urgent:
                if ready is not None and ready():
                    break
                left = linger_end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._urgent and self._items[0].urgent is False:
                batch = self._take_fast_lane(max_items, limit)
            else:
                batch, size = [], 0
                while self._items and len(batch) < max_items:
                    size += len(self._items[0].payload)
                    if batch and size > limit:
                        break
                    batch.append(self._items.popleft())
            self._bytes -= sum(len(d.payload) for d in batch)
            self._urgent -= sum(d.urgent for d in batch)
            self._cond.notify_all()
            return batch

    def _take_fast_lane(self, max_items: int, max_bytes: int) -> list[Delivery]:
        """The urgent deliveries and everything queued before them from the same gateways,
        in arrival order; the rest stays queued in its order."""
        end = max(i for i, d in enumerate(self._items) if d.urgent)
        keys = [_gateway_of(self._items[i]) for i in range(end + 1)]
        last = {keys[i]: i for i in range(end + 1) if self._items[i].urgent}
        batch: list[Delivery] = []
        rest: deque[Delivery] = deque()
        size, full = 0, False
        for i, d in enumerate(self._items):
            if not full and i <= end and last.get(keys[i], -1) >= i:
                full = bool(batch) and (
                    len(batch) >= max_items or size + len(d.payload) > max_bytes
                )
                if not full:
                    batch.append(d)
                    size += len(d.payload)
                    continue
            rest.append(d)
        self._items = rest
        self.fast_lane_batches += 1
        return batch

    def clear(self) -> int:
        """Forget everything buffered (after a disconnect: the broker will redeliver it)."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self._bytes = 0
            self._urgent = 0
            self._cond.notify_all()
            return n

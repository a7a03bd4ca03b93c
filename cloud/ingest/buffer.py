"""A bounded hand-over between the MQTT network thread and the storing loop.

``put`` blocks while the buffer is full. Because it is called from the MQTT client's message
callback, a full buffer stops the client from reading its socket: TCP back-pressure reaches
the broker, which keeps the messages (unacknowledged) instead of this process dropping them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message as the broker delivered it, not yet stored or acknowledged."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime
    connection: int = 0  # which connection delivered it: acks only go back on that one


class BoundedBuffer:
    """At most ``max_items`` deliveries and ``max_bytes`` payload bytes (one item may exceed)."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[Delivery] = deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self.high_water_items = 0
        self.high_water_bytes = 0

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
            self.high_water_items = max(self.high_water_items, len(self._items))
            self.high_water_bytes = max(self.high_water_bytes, self._bytes)
            self._cond.notify_all()
            return True

    def take(self, max_items: int, linger_s: float, wait_s: float) -> list[Delivery]:
        """Up to ``max_items``: waits ``wait_s`` for a first one, then ``linger_s`` for more."""
        with self._cond:
            deadline = time.monotonic() + wait_s
            while not self._items:
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                self._cond.wait(left)
            linger_end = time.monotonic() + linger_s
            while len(self._items) < max_items:
                left = linger_end - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            batch = [self._items.popleft() for _ in range(min(max_items, len(self._items)))]
            self._bytes -= sum(len(d.payload) for d in batch)
            self._cond.notify_all()
            return batch

    def clear(self) -> int:
        """Forget everything buffered (after a disconnect: the broker will redeliver it)."""
        with self._cond:
            n = len(self._items)
            self._items.clear()
            self._bytes = 0
            self._cond.notify_all()
            return n

"""Moves stored messages from the outbox to the broker: read batch → publish QoS1 → PUBACK → delete.

At most ``max_inflight`` messages are published and not yet acknowledged (paho fails past ~65k
outstanding). Acknowledged rows are deleted in small batches (one transaction per ~50 ms), so a
crash re-sends at most those: at-least-once, deduplicated by msg_id in the cloud.

Ordering: rows go out by lane, oldest first. After a reconnect paho re-sends what it still
holds; new rows wait until those are acknowledged so that a device's readings never overtake
each other. A row made while the uplink was down and sent more than ``historical_after``
seconds after it was made is flagged ``historical`` (same msg_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from edge.outbox import Outbox, Row
from edge.uplink import Uplink
from protocols.topics import Channel, topic

log = logging.getLogger(__name__)

ACK_FLUSH_SECONDS = 0.05
ACK_FLUSH_ROWS = 512


class Sender:
    def __init__(
        self,
        outbox: Outbox,
        uplink: Uplink,
        *,
        site: str,
        gateway: str,
        batch: int = 200,
        max_inflight: int = 1000,
        historical_after: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox = outbox
        self.uplink = uplink
        self.batch = batch
        self.max_inflight = max_inflight
        self.historical_after = historical_after
        self.clock = clock
        self.topics = {c: topic(site, gateway, c) for c in Channel if c.uplink}
        self.inflight: dict[int, int] = {}  # paho mid → outbox row id
        self.published = 0
        self.replayed = 0  # sent with historical=true
        self._acked: list[int] = []
        self._acked_since = 0.0
        self._barrier = False
        self._wake = asyncio.Event()
        outbox.on_put = self._wake.set
        uplink.on_puback = self._on_puback
        uplink.on_change = self._on_change
        uplink.on_new_client = self.reset

    # -- hooks (event loop thread) -------------------------------------------------------------

    def _on_puback(self, mid: int) -> None:
        row = self.inflight.pop(mid, None)
        if row is None:
            return  # the birth message, or a message from a client we dropped
        if not self._acked:
            self._acked_since = time.monotonic()
        self._acked.append(row)
        self._wake.set()

    def _on_change(self, up: bool) -> None:
        if not up:
            # paho keeps what is in flight and re-sends it first on reconnect: hold new rows
            # back until those are acknowledged, so nothing overtakes them.
            self._barrier = bool(self.inflight)
        self._wake.set()

    def reset(self) -> None:
        """A new paho client: what the old one held is gone, so hand every row out again."""
        self.inflight.clear()
        self._barrier = False
        self.outbox.rewind()
        self._wake.set()

    # -- the loop ---------------------------------------------------------------------------

    def flush_acks(self) -> int:
        if not self._acked:
            return 0
        rows, self._acked = self._acked, []
        return self.outbox.ack(rows)

    @property
    def idle(self) -> bool:
        """Nothing in flight and nothing stored."""
        return not self.inflight and not self._acked and self.outbox.depth == 0

    async def run(self) -> None:
        # (Re)started: rows handed out by a previous run may never have reached paho.
        self.outbox.rewind()
        low_water = max(1, min(self.batch, self.max_inflight) // 2)
        while True:
            self._wake.clear()
            if self._acked and (
                len(self._acked) >= ACK_FLUSH_ROWS
                or time.monotonic() - self._acked_since >= ACK_FLUSH_SECONDS
                or not self.inflight
            ):
                self.flush_acks()
            if self._barrier and not self.inflight:
                self._barrier = False
            if self.uplink.connected and not self._barrier:
                room = self.max_inflight - len(self.inflight)
                if room >= low_water:  # refill in batches, not one row per PUBACK
                    rows = self.outbox.next_batch(min(room, self.batch))
                    if rows:
                        self._publish(rows)
                        await asyncio.sleep(0)  # let PUBACKs in
                        continue
            timeout = ACK_FLUSH_SECONDS if self._acked else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _publish(self, rows: list[Row]) -> None:
        now = self.clock()
        since = self.uplink.connected_since
        for row in rows:
            historical = row.created < since and now - row.created > self.historical_after
            mid = self.uplink.publish(self.topics[row.channel], row.payload_for_send(historical))
            self.inflight[mid] = row.id
            self.published += 1
            if historical:
                self.replayed += 1

    async def drain(self, seconds: float) -> bool:
        """Wait until everything stored is acknowledged (or ``seconds``). True if drained."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.flush_acks()
            if self.idle:
                return True
            await asyncio.sleep(0.02)
        self.flush_acks()
        return self.idle

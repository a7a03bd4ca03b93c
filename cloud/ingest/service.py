"""The ingest service: MQTT deliveries → durable storage → acknowledgement → ``on_stored``.

Run it inside the application's TaskGroup::

    ingest = Ingest(config, engine, registry, on_stored=rules.feed)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(ingest.run(), name="ingest")

Cancelling the task disconnects without acknowledging anything that is not yet stored; the
broker keeps those messages in the persistent session and delivers them to the next process
that connects with the same client id.

``IngestConfig.mode="split"``: the deliveries come from a receiver process that acknowledges
them once appended to a durable raw log (cloud/ingest/receive.py, rawlog.py); this service
starts and supervises it, reads the log through :class:`cloud.ingest.split.LogSource` and,
after its own commit, advances the log's mark instead of acknowledging to the broker.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from cloud.ingest.buffer import MAX_BUFFER_BYTES, BoundedBuffer, Delivery
from cloud.ingest.config import IngestConfig
from cloud.ingest.models import OnStored, StoredMessage
from cloud.ingest.rawlog import ReceiverStatus
from cloud.ingest.receiver import Receiver
from cloud.ingest.split import LogSource
from cloud.ingest.store import STORE_ERROR, BatchResult, BatchWriter, Prepared
from cloud.registry.service import Registry

log = logging.getLogger(__name__)


class _Source(Protocol):
    """Where deliveries come from: the MQTT receiver (in-process) or the raw log (split)."""

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def ack(self, deliveries: Iterable[Delivery]) -> int: ...


@dataclass(slots=True)
class IngestStats:
    """Counters since start. ``rejects`` is keyed by :class:`protocols.errors.RejectReason`."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    readings: int = 0
    acked: int = 0
    batches: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    gaps_opened: int = 0
    gaps_closed: int = 0
    gateway_changes: int = 0
    write_failures: int = 0
    hook_errors: int = 0
    decode_cpu_s: float = 0.0  # CPU seconds spent decoding batches (thread time)
    store_cpu_s: float = 0.0  # CPU seconds spent storing and committing them
    ack_cpu_s: float = 0.0  # CPU seconds spent handing acknowledgements to paho


class Ingest:
    """Reads uplink messages, stores them, then acknowledges them and calls ``on_stored``."""

    def __init__(
        self,
        config: IngestConfig,
        engine: Engine,
        registry: Registry,
        on_stored: OnStored | None = None,
        thumbnail_ttl: timedelta = timedelta(days=30),
    ) -> None:
        self.config = config
        self.registry = registry
        self.on_stored = on_stored
        self._also: list[OnStored] = []  # further consumers (also_notify), after on_stored
        self.buffer = BoundedBuffer(config.queue_bound, MAX_BUFFER_BYTES)
        self.writer = BatchWriter(engine, registry, thumbnail_ttl)
        self.stats = IngestStats()
        self.receiver: Receiver | None = None  # in-process mode
        self.log_source: LogSource | None = None  # split mode
        self._subscribed = asyncio.Event()
        self._registry_stale = False
        # Set while the loop waits for the next batch: taking it then, however small, beats
        # lingering (group commit: batches grow by themselves while a commit is under way).
        self._writer_free = threading.Event()

    @property
    def queue_depth(self) -> int:
        """Messages received and not yet taken into a batch (split mode: including the raw
        log's rows not yet read)."""
        if self.log_source is not None:
            return len(self.buffer) + self.log_source.backlog_rows
        return len(self.buffer)

    @property
    def settled(self) -> bool:
        """Nothing received is waiting to be stored and acknowledged (a batch being decoded
        between the buffer and the writer is not seen: callers poll). Split mode: also the
        receiver process has appended everything it took and the raw log is all stored."""
        local = not self.buffer and self.stats.received == self.stats.acked
        return local and (self.log_source is None or self.log_source.drained)

    @property
    def receiver_status(self) -> ReceiverStatus | None:
        """Split mode: the receiver process's counters as it last wrote them."""
        return None if self.log_source is None else self.log_source.status

    async def run(self) -> None:
        """Connect, then store batches until cancelled.

        Two stages overlap: while batch N is being written (the database releases the GIL),
        batch N+1 is taken from the buffer and decoded. Batches are committed, acknowledged
        and passed to ``on_stored`` strictly in order. Batching is group commit: the next
        batch is taken as soon as the writer is free (no waiting when idle), and otherwise
        grows while the writer is busy, up to ``batch_size`` (``linger_s`` caps the wait).
        """
        loop = asyncio.get_running_loop()

        def subscribed() -> None:
            loop.call_soon_threadsafe(self._subscribed.set)

        receiver: _Source
        supervisor: asyncio.Task[None] | None = None
        if self.config.mode == "split":
            receiver = self.log_source = LogSource(self.config, self.buffer, subscribed)
        else:
            receiver = self.receiver = Receiver(self.config, self.buffer, subscribed)
        receiver.start()
        if self.log_source is not None:
            supervisor = asyncio.create_task(self.log_source.supervise(), name="receiver")
        ahead: asyncio.Task[Prepared | None] | None = None
        try:
            ahead = asyncio.create_task(asyncio.to_thread(self._next_batch))
            while True:
                self._writer_free.set()
                self.buffer.wake()
                prepared = await ahead
                self._writer_free.clear()
                ahead = asyncio.create_task(asyncio.to_thread(self._next_batch))
                if prepared is None:
                    continue
                result = await self._store(prepared)
                started = time.thread_time()
                self.stats.acked += receiver.ack(prepared.deliveries)
                self.stats.ack_cpu_s += time.thread_time() - started
                await self._notify(result.stored)
        finally:
            if ahead is not None:
                ahead.cancel()
            # Stop reading and disconnect; whatever is buffered stays unacknowledged.
            await asyncio.shield(asyncio.to_thread(receiver.stop))
            if supervisor is not None:  # stops the receiver process
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)
            if self.log_source is not None:
                await asyncio.shield(asyncio.to_thread(self.log_source.close))

    def _next_batch(self) -> Prepared | None:
        c = self.config
        batch = self.buffer.take(
            c.batch_size, c.linger_s, 0.5, self._writer_free.is_set, c.batch_bytes
        )
        if not batch:
            return None
        started = time.thread_time()
        prepared = BatchWriter.decode(batch)
        self.stats.decode_cpu_s += time.thread_time() - started
        return prepared

    def _write(self, prepared: Prepared) -> BatchResult:
        started = time.thread_time()
        try:
            return self.writer.store(prepared)
        finally:
            self.stats.store_cpu_s += time.thread_time() - started

    async def wait_subscribed(self) -> None:
        """Wait until subscribed (start-up ordering, tests); bound it with asyncio.timeout."""
        await self._subscribed.wait()

    async def _store(self, prepared: Prepared) -> BatchResult:
        """Store one batch, retrying while the database is unavailable (never drops it).

        A unique-key conflict is retried (another ingest process stored a msg_id first; the
        retry sees it as a duplicate). Any other refusal, or a conflict that persists, splits
        the batch to dead-letter only the message the database refuses.
        """
        self.stats.received += len(prepared.deliveries)
        delay = self.config.retry_backoff_s
        conflicts = 0
        while True:
            try:
                if self._registry_stale:  # the cache may hold rows of a rolled-back batch
                    await asyncio.to_thread(self.registry.refresh)
                    self._registry_stale = False
                result = await asyncio.to_thread(self._write, prepared)
                break
            except OperationalError as exc:
                self.stats.write_failures += 1
                self._registry_stale = True
                log.warning("database unavailable (%s); retrying in %.1fs", exc.orig, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            except (SQLAlchemyError, OverflowError) as exc:
                # OverflowError: sqlite3 refuses an integer beyond 64 bits before SQLAlchemy
                # sees it (e.g. a seq of 2**63, which the schema allows).
                self.stats.write_failures += 1
                self._registry_stale = True
                conflicts += 1
                if isinstance(exc, IntegrityError) and conflicts <= 3:
                    continue
                return await self._refused(prepared, exc)
        self._count(result)
        return result

    async def _refused(self, prepared: Prepared, exc: Exception) -> BatchResult:
        if len(prepared.deliveries) > 1:
            return await self._store_each(prepared)
        [d] = prepared.deliveries
        log.error("database refused %s: %s", d.topic, exc)
        delay = self.config.retry_backoff_s
        while True:
            try:
                await asyncio.to_thread(self.writer.dead_letter, d, STORE_ERROR, str(exc))
                break
            except OperationalError as down:
                log.warning("database unavailable (%s); retrying in %.1fs", down.orig, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
        self.stats.rejects[STORE_ERROR] += 1
        return BatchResult()

    async def _store_each(self, prepared: Prepared) -> BatchResult:
        """One at a time, to isolate a message the database refuses from the rest."""
        self.stats.received -= len(prepared.deliveries)
        total = BatchResult()
        for d in prepared.deliveries:
            one = await self._store(BatchWriter.decode([d]))
            total.stored.extend(one.stored)
        return total

    def _count(self, r: BatchResult) -> None:
        s = self.stats
        s.batches += 1
        s.stored += sum(1 for m in r.stored if not m.duplicate)
        s.duplicates += r.duplicates
        s.readings += r.readings
        s.rejects.update(r.rejects)
        s.gaps_opened += r.gaps_opened
        s.gaps_closed += r.gaps_closed
        s.gateway_changes += r.gateway_changes

    def also_notify(self, hook: OnStored) -> Callable[[], None]:
        """Call ``hook`` with every stored batch too, after ``on_stored`` (which keeps its
        place: the rules see a batch first). Returns the function that removes it again."""
        self._also.append(hook)
        return lambda: self._also.remove(hook)

    async def _notify(self, stored: Sequence[StoredMessage]) -> None:
        if not stored:
            return
        hooks = [self.on_stored, *self._also] if self.on_stored is not None else [*self._also]
        for hook in hooks:
            try:
                await hook(stored)
            except Exception:  # supervisor boundary: a consumer's bug must not stop ingest
                self.stats.hook_errors += 1
                log.exception("on_stored hook failed for a batch of %d messages", len(stored))

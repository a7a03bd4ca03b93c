"""The rules runner: stored messages in per-device order through one :class:`RuleEngine`.

Ordering. Ingest calls :meth:`RulesRunner.on_stored` after each commit with the batch in
arrival order, and MQTT keeps the order of one gateway's messages on its topic; the runner
handles one batch at a time (a lock), so every device's observations reach the engine in order.

Scaling out. Rule state (durations, windows, zone correlation) must see every message of a
site, so the unit of sharding is the *site*: process ``i`` of ``n`` evaluates the sites with
``shard_of(site, n) == i`` (a stable CRC-32, the same in every process and release) and ignores
the rest. Give each ingest process the sites of its shard (``IngestConfig.sites``) — then each
site's stream reaches exactly one runner. MQTT 5 shared subscriptions split one stream between
processes message by message, which would split a site's state: do not put a runner behind one
fed by ``on_stored`` — run ingest as a storage-only group and a rules process that tails the
database instead (:mod:`cloud.rules.feed`, ``linli cloud run --role rules``).

Nothing stored is missed. The runner remembers the highest ``ingest_messages.id`` it has
evaluated (``watermark``) and saves it with the evaluator's snapshot in one transaction, once
the actions of everything up to it were applied (:meth:`RulesRunner.checkpoint`, periodic and on
shutdown). A restart restores the snapshot and replays the stored messages after the watermark
(:meth:`cloud.rules.feed.StoredFeed.catch_up`) before it takes live batches. A message evaluated
twice does not raise twice: the alert service keeps one active alert per (rule, subject).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import zlib
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands import service as commands
from cloud.ingest.models import StoredMessage
from cloud.notify.follow import AccessHook
from cloud.notify.hub import Hub
from cloud.notify.live_events import access_event
from cloud.rules.effects import Effects, RuleAction
from cloud.rules.stored import Mark, take_mark
from cloud.rules.tables import RuleStateRow
from protocols.codec import Decoded
from protocols.messages import AccessEvent, CommandAck, Envelope, GatewayState, GatewayStatus
from protocols.rules.engine import RuleEngine
from protocols.rules.language import RuleSet
from protocols.rules.observations import Lookup, Observation, observations_from

log = logging.getLogger(__name__)

QUEUE_BATCHES = 64
"""Stored batches waiting for evaluation, at most; a full queue slows ingest down (await)."""

UNKNOWN = -1
"""``rule_state.watermark`` of a snapshot saved before watermarks existed: start at the end."""

MARKS_KEPT = 256


class Engine(Protocol):
    def observe(self, obs: Observation) -> Sequence[RuleAction]: ...
    def advance(self, now: datetime) -> Sequence[RuleAction]: ...
    def snapshot(self) -> dict[str, Any]: ...
    def load(self, data: Mapping[str, Any]) -> None: ...


def shard_of(site: str, count: int) -> int:
    """The shard that owns ``site``: stable across processes, restarts and Python versions."""
    return zlib.crc32(site.encode()) % count


class RulesRunner:
    def __init__(
        self,
        ruleset: RuleSet,
        sessions: sessionmaker[Session],
        lookup: Lookup,
        effects: Effects,
        hub: Hub,
        *,
        shard_index: int = 0,
        shard_count: int = 1,
        timezones: Mapping[str, str] | None = None,
        default_timezone: str = "UTC",
        on_gateway_online: Callable[[str, str], None] | None = None,
    ) -> None:
        self.ruleset = ruleset.for_cloud()
        self.sessions = sessions
        self.lookup = lookup
        self.effects = effects
        self.hub = hub
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.engine: Engine = RuleEngine(
            self.ruleset, timezones=timezones, default_timezone=default_timezone
        )
        self.on_gateway_online = on_gateway_online
        self.access_published: AccessHook | None = None
        """Told the msg_ids of the access events published on the hub (for other processes)."""
        self._lock = asyncio.Lock()
        self._queue: asyncio.Queue[Sequence[StoredMessage]] = asyncio.Queue(QUEUE_BATCHES)
        self.counts: Counter[str] = Counter()
        self.last_batch_at: datetime | None = None
        self.watermark = 0
        """Highest ``ingest_messages.id`` evaluated (this shard's sites; rows of others too)."""
        self.reading_floor = 0
        self._marks: deque[Mark] = deque(maxlen=MARKS_KEPT)
        self._saved: tuple[int, int] | None = None  # (watermark, actions) at the last save
        self.caught_up = asyncio.Event()
        """Set once the replay after start is done; ingest waits for it (role ``all``)."""

    @property
    def shard_name(self) -> str:
        return f"{self.shard_index}/{self.shard_count}"

    def owns(self, site: str) -> bool:
        return self.shard_count == 1 or shard_of(site, self.shard_count) == self.shard_index

    async def on_stored(self, batch: Sequence[StoredMessage]) -> None:
        """The ingest hook: queue a committed batch for evaluation (waits if the queue is full).

        Evaluation runs in :meth:`consume`, overlapping with ingest's next database write; one
        consumer keeps the batches, and so every device's observations, in order.
        """
        await self._queue.put(batch)

    async def consume(self) -> None:
        """Evaluate queued batches in order; runs until cancelled."""
        while True:
            batch = await self._queue.get()
            try:
                await self.process(batch)
            finally:
                self._queue.task_done()

    async def drained(self) -> None:
        """Wait until every queued batch was evaluated and its actions applied."""
        await self._queue.join()
        await self.effects.drained()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def process(
        self, batch: Sequence[StoredMessage], *, upto: int = 0, replay: bool = False
    ) -> None:
        """Evaluate one committed batch, then apply the actions it caused.

        A message whose row id is not above the watermark was evaluated already and is
        skipped. ``upto``: the feed has dealt with every row up to this id (rows of other
        shards, skipped ids), so the watermark moves there. ``replay``: the batch is being
        replayed after a restart; a message older than ``stale_after_s`` then only updates
        rule state (as replayed gateway data does), so nothing stale is raised or sent.
        """
        async with self._lock:
            actions: list[RuleAction] = []
            acks: list[tuple[str, str, CommandAck]] = []
            published: list[str] = []
            top = self.watermark
            for stored in batch:
                if stored.duplicate:
                    self.counts["duplicate"] += 1
                    continue
                row = stored.row_id
                if row is not None:
                    if row <= self.watermark:
                        self.counts["already_evaluated"] += 1
                        continue
                    top = max(top, row)
                if not self.owns(stored.site):
                    self.counts["other_shard"] += 1
                    continue
                message = stored.message
                if isinstance(message, GatewayState):
                    if message.status is GatewayStatus.ONLINE and self.on_gateway_online:
                        self.on_gateway_online(stored.site, stored.gateway)
                    continue
                if isinstance(message, CommandAck):
                    acks.append((stored.site, stored.gateway, message))
                    continue
                if isinstance(message, AccessEvent):
                    self.hub.publish(access_event(stored.site, stored.gateway, message))
                    published.append(message.msg_id)
                if stored.pending:
                    self.counts["pending"] += 1
                    continue
                actions.extend(self._evaluate(stored, replay))
            self.watermark = max(top, upto)
            self.last_batch_at = datetime.now(UTC)
            if published and self.access_published is not None:
                self.access_published(published)
            if acks:
                try:
                    await asyncio.to_thread(self._apply_acks, acks)
                except SQLAlchemyError as exc:
                    # The acks stay stored by ingest; only their match to commands is missed.
                    self.counts["ack_errors"] += len(acks)
                    log.error("could not record %d command acks: %s", len(acks), exc)
            if actions:
                await self.effects.submit(actions)

    def _evaluate(self, stored: StoredMessage, replay: bool = False) -> list[RuleAction]:
        out: list[RuleAction] = []
        message = stored.message
        if replay and isinstance(message, Envelope) and not self._fresh(message.ts):
            # Replayed after a restart and too old to act on: it rebuilds rule state only.
            message = message.model_copy(update={"historical": True})
            self.counts["replayed_stale"] += 1
        elif isinstance(message, Envelope) and message.historical and self._fresh(message.ts):
            # Replayed after a short outage: a smoke alarm 20 s late is still an emergency. Only
            # replayed data older than stale_after_s is history that must not raise as new.
            message = message.model_copy(update={"historical": False})
            self.counts["replayed_fresh"] += 1
        observations = observations_from(Decoded(stored.topic, message), self.lookup)
        self.counts["observations"] += len(observations)
        observe = self.engine.observe
        for obs in observations:
            try:
                out.extend(observe(obs))
            except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
                # One bad observation never stops the runner: log it with context and go on.
                self.counts["errors"] += 1
                log.exception(
                    "rule evaluation failed for %s/%s %s: %s", obs.site, obs.device, obs.signal, exc
                )
        return out

    def _fresh(self, ts: datetime) -> bool:
        age = (datetime.now(UTC) - ts).total_seconds()
        return age <= self.effects.settings.stale_after_s

    def _apply_acks(self, acks: list[tuple[str, str, CommandAck]]) -> None:
        with self.sessions.begin() as db:
            for site, gateway, ack in acks:
                if commands.apply_ack(db, site, gateway, ack) is None:
                    self.counts["ack_unknown"] += 1
                else:
                    self.counts["acks"] += 1

    async def tick(self, now: datetime | None = None) -> None:
        """Fire the evaluator's timers (durations, no-data, window expiry)."""
        now = now or datetime.now(UTC)
        async with self._lock:
            try:
                actions = list(self.engine.advance(now))
            except (ValueError, TypeError, KeyError, ArithmeticError):
                self.counts["errors"] += 1
                log.exception("rule timers failed at %s", now.isoformat())
                return
            if actions:
                await self.effects.submit(actions)

    async def run_timers(self, tick_s: float) -> None:
        """The timer loop; runs until cancelled."""
        while True:
            await asyncio.sleep(tick_s)
            await self.tick()

    # -- state hand-over -----------------------------------------------------------------------

    def note_mark(self, mark: Mark) -> None:
        """Remember a :class:`Mark`; the newest one at or below the watermark is the floor."""
        self._marks.append(mark)

    def take_mark(self) -> None:
        """Read and remember a mark now (worker thread)."""
        with self.sessions() as db:
            self.note_mark(take_mark(db))

    def floor(self) -> int:
        """The readings floor for the rows after the watermark (see :class:`Mark`)."""
        best = self.reading_floor
        for mark in self._marks:
            if mark.messages <= self.watermark:
                best = max(best, mark.readings)
        return best

    async def checkpoint(self) -> None:
        """Save the snapshot and the watermark together, once everything up to the watermark
        has had its actions applied (alerts raised, commands issued)."""
        if (self.watermark, self.effects.submitted) == self._saved:
            return  # nothing evaluated and no timer fired since the last checkpoint
        await asyncio.to_thread(self.take_mark)
        async with self._lock:
            # The lock keeps evaluation and timers off the engine; a worker thread keeps the
            # event loop free (a snapshot of 40,000 devices took 0.6 s here).
            state = await asyncio.to_thread(self.engine.snapshot)
            watermark, floor = self.watermark, self.floor()
            applied = self.effects.submitted
        await self.effects.applied_through(applied)
        await asyncio.to_thread(self._write_state, state, watermark, floor)
        self.reading_floor = floor
        self._saved = (watermark, applied)
        self.counts["checkpoints"] += 1

    async def save_every(self, seconds: float) -> None:
        """The checkpoint loop; runs until cancelled."""
        while True:
            await asyncio.sleep(seconds)
            await self.checkpoint()

    def save_state(self) -> None:
        """Store the evaluator's snapshot and watermark now (no waiting for pending actions)."""
        self._write_state(self.engine.snapshot(), self.watermark, self.floor())

    def _write_state(self, state: dict[str, Any], watermark: int, floor: int) -> None:
        with self.sessions.begin() as db:
            row = db.get(RuleStateRow, self.shard_name)
            if row is None:
                row = RuleStateRow(shard=self.shard_name)
                db.add(row)
            row.fingerprint = _fingerprint(self.ruleset)
            row.saved_at = datetime.now(UTC)
            row.state = {"snapshot": state}
            row.watermark = watermark
            row.reading_floor = floor

    def restore_state(self) -> bool:
        """Resume from the saved snapshot and watermark; False if there is no usable snapshot.

        Without a saved watermark of its own it starts where the furthest-behind other shard
        stopped (a re-shard: the new set picks up where the old one left off, evaluating some
        messages twice), or else — first start, or a snapshot older than watermarks — at the
        end of what is stored. It saves that at once, so a crash from now on replays what it
        missed.
        """
        with self.sessions() as db:
            row = db.get(RuleStateRow, self.shard_name)
            snapshot = None if row is None else row.state.get("snapshot")
            if row is None or row.watermark == UNKNOWN:
                others = db.execute(
                    select(func.min(RuleStateRow.watermark), func.min(RuleStateRow.reading_floor))
                    .where(RuleStateRow.watermark > UNKNOWN)
                    .where(RuleStateRow.shard != self.shard_name)
                ).one()
                if others[0] is not None:
                    self.watermark, self.reading_floor = int(others[0]), int(others[1])
                else:
                    mark = take_mark(db)
                    self.watermark, self.reading_floor = mark.messages, mark.readings
            else:
                self.watermark, self.reading_floor = row.watermark, row.reading_floor
        restored = False
        if snapshot is not None:
            try:
                # Rules changed since the snapshot lose their own state only (engine.load).
                self.engine.load(snapshot)
                restored = True
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("saved rule state not usable (%s); starting fresh", exc)
        if row is None or row.watermark == UNKNOWN:
            self.save_state()
        return restored


def _fingerprint(ruleset: RuleSet) -> str:
    return hashlib.sha256(ruleset.fingerprint().encode()).hexdigest()

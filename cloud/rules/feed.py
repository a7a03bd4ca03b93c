"""The rules feed: stored messages read back from the database, in order, for the runner.

Two uses:

* **Replay after a restart** (every role): :meth:`StoredFeed.catch_up` evaluates the rows after
  the saved watermark up to the end of what is stored, before live batches are taken.
  Bounded by ``replay_max_rows`` and ``replay_max_age_s`` (:class:`FeedConfig`).
* **Tailing** (``linli cloud run --role rules``): when ingest runs as an MQTT 5 shared group of
  storage-only processes, nobody hands the runner batches; :meth:`StoredFeed.run` reads
  ``ingest_messages`` by id after the watermark, for the runner's shard of sites.

Ids become visible out of order when several ingest processes commit concurrently: id 101 may
be committed while 100 is still in an open transaction. A missing id (a *hole*) stops the feed
for up to ``settle_s``; then it is skipped, counted (``skipped_ids``) and logged — a message
committed later than that is never evaluated (the trade-off: a longer ``settle_s`` delays every
alert behind a hole, a shorter one risks skipping a slow commit; rolled-back ids are holes
that never fill). Each gateway numbers its messages (``boot_id``, ``seq``): a row whose
gateway boot has an earlier ``seq`` not yet seen waits for it up to ``hold_s`` (the earlier
message may still be in another ingest process's batch), and within a step each gateway boot's
messages are put in ``seq`` order (the order the gateway made them) before they reach the
engine, keeping every device's observations in order. A message that still arrives after a
later one of its gateway was evaluated is evaluated anyway and counted as ``late``. A boot
seen for the first time waits for its seq 0 the same way (after a restart of this process, a
boot whose earlier messages are all below the watermark waits ``hold_s`` once).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cloud.registry.tables import Gateway
from cloud.rules.config import FeedConfig
from cloud.rules.runner import RulesRunner
from cloud.rules.stored import (
    Rebuilt,
    Row,
    last_id,
    rebuild,
    rows_after,
    rows_between,
    start_after,
)
from cloud.rules.stored import take_mark as read_mark

log = logging.getLogger(__name__)

MAX_WAITING_STEPS = 10
"""Rows read ahead while waiting behind a hole, at most this many steps' worth."""


@dataclass(slots=True)
class _Hole:
    lo: int
    hi: int
    since: float


@dataclass(slots=True)
class _Step:
    rows: list[Row]
    upto: int


class StoredFeed:
    def __init__(
        self,
        runner: RulesRunner,
        config: FeedConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        sequential: bool | None = None,
    ) -> None:
        """``sequential``: one ingest transaction at a time writes this shard's sites (role
        ``all``, or SQLite), so a later message's readings have higher ids than an earlier
        one's and the readings floor can follow the readings evaluated (None: SQLite only)."""
        self.runner = runner
        if sequential is None:
            sequential = self.runner.sessions.kw["bind"].dialect.name == "sqlite"
        self.sequential = sequential
        self.sessions = runner.sessions
        self.config = config
        self.counts = runner.counts
        self.clock = clock
        self._fetched: int | None = None  # highest id read so far
        self._rows: dict[int, tuple[float, Row]] = {}  # visible, not yet evaluated
        self._holes: list[_Hole] = []
        self._last_seq: dict[tuple[str, str, str], int] = {}
        self._states_since: datetime | None = None

    # -- public ---------------------------------------------------------------------------------

    async def catch_up(self, settle_s: float = 0.0) -> int:
        """Evaluate every stored row after the watermark up to the end of what is stored now.

        ``settle_s`` 0: nobody else writes this shard's rows (role ``all``, ingest not started
        yet), so a missing id is a rolled-back one and skipped at once.
        """
        end = await asyncio.to_thread(self._prepare)
        evaluated = 0
        while self.runner.watermark < end:
            before = self.runner.watermark
            step = await self._step(settle_s, 0.0, replay=True)
            evaluated += len(step.rows)
            if self.runner.watermark == before:  # waiting for a hole to settle
                await asyncio.sleep(self.config.poll_s)
        self.counts["replayed"] += evaluated
        if evaluated:
            log.info("rules replayed %d stored messages up to id %d", evaluated, end)
        self.runner.caught_up.set()
        return evaluated

    async def run(self) -> None:
        """Role ``rules``: catch up, then tail the database until cancelled."""
        await self.catch_up(self.config.settle_s)
        self._states_since = datetime.now(UTC)
        while True:
            step = await self._step(self.config.settle_s, self.config.hold_s, replay=False)
            await self._gateway_states()
            if len(step.rows) < self.config.batch_rows:
                await asyncio.sleep(self.config.poll_s)

    @property
    def waiting(self) -> int:
        """Rows read but not yet evaluated (held, or behind a hole)."""
        return len(self._rows)

    # -- one step -------------------------------------------------------------------------------

    def _prepare(self) -> int:
        """Apply the replay bound; returns the id the catch-up runs to."""
        runner = self.runner
        with self.sessions() as db:
            start = start_after(db, runner.watermark, self.config.replay_max_rows)
            end = last_id(db)
        if start > runner.watermark:
            self.counts["replay_skipped"] += start - runner.watermark
            log.warning(
                "rules replay bounded to %d rows: ids %d..%d are not evaluated",
                self.config.replay_max_rows,
                runner.watermark + 1,
                start,
            )
            runner.watermark = start
        self._fetched = max(self._fetched or 0, runner.watermark)
        return end

    async def _step(self, settle_s: float, hold_s: float, *, replay: bool) -> _Step:
        await asyncio.to_thread(self._read)
        step = self._ready(settle_s, hold_s)
        mine = [r for r in step.rows if self.runner.owns(r.site)]
        if replay:
            oldest = datetime.now(UTC) - timedelta(seconds=self.config.replay_max_age_s)
            young = [r for r in mine if r.received_at >= oldest]
            self.counts["replay_too_old"] += len(mine) - len(young)
            mine = young
        mine = self._in_device_order(mine)
        if mine or step.upto > self.runner.watermark:
            floor = self.runner.floor()
            rebuilt = await asyncio.to_thread(self._rebuild, mine, floor)
            # Shielded: a shutdown must not stop a step between evaluation and its actions.
            await asyncio.shield(
                self.runner.process(rebuilt.messages, upto=step.upto, replay=replay)
            )
            if self.sequential and rebuilt.top_reading > self.runner.reading_floor:
                # Later messages of this shard have later readings: scan less next time. (Only
                # now: a checkpoint must not pair this floor with the watermark before them.)
                self.runner.reading_floor = rebuilt.top_reading
        return _Step(mine, step.upto)

    def _read(self) -> None:
        """Read new rows and rows that filled holes; remember a mark for the readings floor."""
        if self._fetched is None:
            self._fetched = self.runner.watermark
        now = self.clock()
        with self.sessions() as db:
            self.runner.note_mark(read_mark(db))
            filled = rows_between(db, [(h.lo, h.hi) for h in self._holes]) if self._holes else []
            room = min(
                MAX_WAITING_STEPS * self.config.batch_rows - len(self._rows), self.config.batch_rows
            )
            fresh = rows_after(db, self._fetched, room) if room > 0 else []
        for row in filled:
            self._rows[row.id] = (now, row)
        if filled:
            self._holes = _minus(self._holes, {r.id for r in filled})
        for row in fresh:
            if row.id > self._fetched + 1:
                self._holes.append(_Hole(self._fetched + 1, row.id - 1, now))
            self._rows[row.id] = (now, row)
            self._fetched = row.id

    def _ready(self, settle_s: float, hold_s: float) -> _Step:
        """The rows that can be evaluated now: from the watermark up, in id order, until a
        hole younger than ``settle_s`` or a row that waits for its gateway's earlier message
        (:meth:`_in_sequence`)."""
        now = self.clock()
        pos = self.runner.watermark + 1
        taken: list[tuple[float, Row]] = []
        holes = sorted(self._holes, key=lambda h: h.lo)
        fetched = self._fetched or 0
        while pos <= fetched and len(taken) < self.config.batch_rows:
            seen = self._rows.get(pos)
            if seen is not None:
                taken.append(seen)
                pos += 1
                continue
            hole = next((h for h in holes if h.lo <= pos <= h.hi), None)
            if hole is None:  # below the watermark of an earlier start: nothing to wait for
                pos += 1
                continue
            if now - hole.since < settle_s:
                break
            self.counts["skipped_ids"] += hole.hi - pos + 1
            log.warning(
                "ids %d..%d of ingest_messages not committed within %.1fs: skipped",
                pos,
                hole.hi,
                settle_s,
            )
            self._holes.remove(hole)
            holes.remove(hole)
            pos = hole.hi + 1
        keep = self._in_sequence(taken, now, hold_s)
        if keep < len(taken):
            pos = taken[keep][1].id
        for _, row in taken[:keep]:
            del self._rows[row.id]
        return _Step([row for _, row in taken[:keep]], pos - 1)

    def _in_sequence(self, taken: list[tuple[float, Row]], now: float, hold_s: float) -> int:
        """How many of ``taken`` to evaluate: stop before the first row whose gateway boot has
        an earlier ``seq`` that is neither evaluated nor among the rows kept, unless that row
        has waited ``hold_s`` already (the earlier message may be lost, dead-lettered, or on
        its way through another ingest process)."""
        keep = len(taken)
        while True:
            seqs: dict[tuple[str, str, str], list[int]] = {}
            for _, row in taken[:keep]:
                seqs.setdefault((row.site, row.gateway, row.boot_id), []).append(row.seq)
            for key in seqs:
                seqs[key].sort()
            bad = None
            for index, (seen, row) in enumerate(taken[:keep]):
                if now - seen >= hold_s:
                    continue
                mine = seqs[(row.site, row.gateway, row.boot_id)]
                # A boot not seen yet: its messages count from seq 0 (edge/envelope.py).
                last = self._last_seq.get((row.site, row.gateway, row.boot_id), -1)
                if row.seq <= last + 1:
                    continue
                present = bisect.bisect_left(mine, row.seq) - bisect.bisect_right(mine, last)
                if present < row.seq - last - 1:
                    bad = index
                    break
            if bad is None:
                return keep
            keep = bad

    def _in_device_order(self, rows: list[Row]) -> list[Row]:
        """Each gateway boot's messages in ``seq`` order, in the places they hold (other
        gateways' messages stay where they are)."""
        places: dict[tuple[str, str, str], list[int]] = {}
        for i, row in enumerate(rows):
            places.setdefault((row.site, row.gateway, row.boot_id), []).append(i)
        out = list(rows)
        for key, where in places.items():
            members = sorted((rows[i] for i in where), key=lambda r: r.seq)
            last = self._last_seq.get(key)
            if last is not None and members[0].seq < last:
                # Committed after a later message of its gateway had been evaluated.
                self.counts["late"] += sum(1 for m in members if m.seq < last)
            self._last_seq[key] = max(members[-1].seq, last if last is not None else -1)
            for i, row in zip(where, members, strict=True):
                out[i] = row
        return out

    def _rebuild(self, rows: list[Row], floor: int) -> Rebuilt:
        with self.sessions() as db:
            return rebuild(db, rows, floor, self.counts)

    async def _gateway_states(self) -> None:
        """Gateways that came online since the last look get their rule config (role rules:
        gateway births reach the database through ingest, not this process)."""
        callback = self.runner.on_gateway_online
        since = self._states_since
        if callback is None or since is None:
            return
        rows = await asyncio.to_thread(self._states, since)
        for site, gateway, online, at in rows:
            self._states_since = max(self._states_since or at, at)
            if online and self.runner.owns(site):
                callback(site, gateway)

    def _states(self, since: datetime) -> list[tuple[str, str, bool, datetime]]:
        with self.sessions() as db:
            q = select(Gateway.site, Gateway.id, Gateway.online, Gateway.state_at).where(
                Gateway.state_at > since
            )
            return [(s, g, bool(o), at) for s, g, o, at in db.execute(q) if at is not None]


def _minus(holes: list[_Hole], found: set[int]) -> list[_Hole]:
    """``holes`` without the ids in ``found`` (a hole may split in two or more)."""
    out: list[_Hole] = []
    for hole in holes:
        lo = hole.lo
        for i in sorted(x for x in found if hole.lo <= x <= hole.hi):
            if i > lo:
                out.append(_Hole(lo, i - 1, hole.since))
            lo = i + 1
        if lo <= hole.hi:
            out.append(_Hole(lo, hole.hi, hole.since))
    return out

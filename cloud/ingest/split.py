"""Ingest's side of split mode: supervise the receiver process, feed the buffer from the raw log.

:class:`LogSource` stands where :class:`cloud.ingest.receiver.Receiver` stands in-process: it
puts :class:`Delivery` items into ingest's :class:`BoundedBuffer` (``mid`` is the raw log id)
and its :meth:`LogSource.ack` is called after the database commit. Acknowledging here means
advancing the raw log's mark: the highest id such that it and every id before it are stored.
A reader thread (one SQLite connection of its own) reads the log in id order, persists the mark,
deletes what is below it in chunks and reads the receiver's status.

Fast lane: an urgent row (event/access channel) far behind in the log would wait for the whole
backlog to be expanded first. So the reader looks for urgent rows beyond what it has read (a
partial index) and hands them over at once, together with every earlier unread row *of the same
gateway* (index on topic) — the same rule as the buffer's fast lane, so each gateway's messages
still reach ``on_stored`` in arrival order. The sequential read later skips what went ahead; the
mark only passes an id once everything before it is stored. After a crash, rows stored ahead of
the mark are read again and recognised as duplicates by msg_id.
"""

from __future__ import annotations

import asyncio
import logging
import os
import select
import sys
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

from cloud.ingest.buffer import BoundedBuffer, Delivery
from cloud.ingest.config import IngestConfig
from cloud.ingest.rawlog import LogRow, RawLog, ReceiverStatus, poke
from protocols.errors import ProtocolError
from protocols.topics import UPLINK, parse_topic, topic

log = logging.getLogger(__name__)
child_log = logging.getLogger("cloud.ingest.receive.process")

READ_CHUNK = 1000  # rows per read, at most
URGENT_SCAN = 20  # urgent rows looked at per loop
STATUS_EVERY_S = 0.05
CHECKPOINT_EVERY_S = 0.25  # the raw log's WAL checkpoints (off the receiver's commits)
IDLE_WAIT_S = 0.1  # with nothing to read: wait this long for the receiver's wake-up at most
RESTART_FIRST_S = 0.2
RESTART_MAX_S = 10.0
STABLE_S = 30.0  # a receiver that ran this long restarts with the first delay again
_ROOT = Path(__file__).resolve().parents[2]  # the directory that holds the cloud package


def _gateway_topics(value: str) -> list[str]:
    """Every uplink topic of the gateway ``value`` belongs to (itself if it does not parse)."""
    try:
        t = parse_topic(value)
    except ProtocolError:
        return [value]
    return [topic(t.site, t.gateway, c) for c in sorted(UPLINK)]


def _delivery(row: LogRow) -> Delivery:
    return Delivery(
        row.topic,
        row.payload,
        row.id,
        1,
        datetime.fromtimestamp(row.received_at, UTC),
        0,
        row.urgent,
    )


class LogSource:
    """Feeds ingest's buffer from the raw log; ``ack`` after commit advances the mark."""

    def __init__(
        self,
        config: IngestConfig,
        buffer: BoundedBuffer,
        on_subscribed: Callable[[], None] | None = None,
    ) -> None:
        path = config.rawlog_file().resolve()
        self.config = config.model_copy(update={"rawlog_path": path})
        self.path = path
        self.buffer = buffer
        self._on_subscribed = on_subscribed
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._cursor = 0  # every id ≤ cursor has been handed over (or skipped as gone ahead)
        self._inflight: set[int] = set()  # handed over, not yet stored
        self._ahead: set[int] = set()  # ids > cursor handed over by the fast lane
        self._urgent_seen = 0  # urgent rows up to here are handed over
        self._lane_after: dict[str, int] = {}
        self._seen_last_id = 0  # the log's last id when the status was last read
        self.status = ReceiverStatus()
        self.backlog_rows = 0  # rows in the log not yet handed over (refreshed by the reader)
        self.child_pid = 0
        self.process_starts = 0
        self.ahead_rows = 0  # rows handed over by the fast lane

    # -- the Receiver-like surface Ingest uses ------------------------------------------------

    def start(self) -> None:
        # The receiver writes a byte here after each append (and status write): an idle
        # reader sleeps on it instead of polling the log.
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        db = RawLog(self.path, self.config.rawlog_synchronous)  # creates the file and schema
        self._cursor = db.mark()
        db.close()
        self._thread = threading.Thread(target=self._read_loop, name="rawlog-reader", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        poke(self._wake_w)
        if self._thread is not None:
            self._thread.join(30)

    def ack(self, deliveries: Iterable[Delivery]) -> int:
        """These are stored: they no longer hold the mark back (persisted by the reader)."""
        n = 0
        with self._lock:
            for d in deliveries:
                self._inflight.discard(d.mid)
                n += 1
        return n

    @property
    def drained(self) -> bool:
        """Everything the receiver took is appended and acknowledged, and everything in the
        log was handed over and stored (callers poll: the status is refreshed every 50 ms;
        the receiver acknowledges each batch right after appending it)."""
        s = self.status
        with self._lock:
            idle = not self._inflight and self._cursor >= self._seen_last_id
        return idle and s.pid == self.child_pid and s.received == s.appended

    def close(self) -> None:
        """After :meth:`stop` and the receiver process's end: release the wake-up pipe and
        delete the log file if nothing in it is left to store."""
        os.close(self._wake_r)
        os.close(self._wake_w)
        self.discard_if_empty()

    def discard_if_empty(self) -> bool:
        """After a clean stop (reader and receiver process stopped): delete the log file if
        everything in it is stored, so logs of finished runs do not pile up. Not safe while
        either is running."""
        db = RawLog(self.path, self.config.rawlog_synchronous)
        try:
            empty = db.backlog().rows == 0
        finally:
            db.close()
        if empty:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        return empty

    # -- the receiver process ------------------------------------------------------------------

    async def supervise(self) -> None:
        """Run the receiver process until cancelled; restart it with backoff when it exits."""
        delay = RESTART_FIRST_S
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
        while True:
            started = time.monotonic()
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cloud.ingest.receive",
                "--wake-fd",
                str(self._wake_w),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                pass_fds=(self._wake_w,),
            )
            assert proc.stdin is not None and proc.stdout is not None
            self.child_pid = proc.pid
            self.process_starts += 1
            # The config on the first line; stdin stays open (its end tells the child we died).
            proc.stdin.write(self.config.model_dump_json().encode() + b"\n")
            pump = asyncio.create_task(self._pump(proc.stdout), name="receiver-log")
            try:
                await proc.stdin.drain()
                code = await proc.wait()
            except asyncio.CancelledError:
                await asyncio.shield(self._terminate(proc))
                raise
            finally:
                await pump
            if time.monotonic() - started > STABLE_S:
                delay = RESTART_FIRST_S
            log.warning("receiver process exited (%s); restarting in %.1fs", code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_MAX_S)

    @staticmethod
    async def _terminate(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

    @staticmethod
    async def _pump(stream: asyncio.StreamReader) -> None:
        """Re-log the child's lines (``LEVEL name: message``) in this process's log."""
        async for raw in stream:
            line = raw.decode("utf-8", "replace").rstrip()
            name, _, rest = line.partition(" ")
            level = logging.getLevelName(name)
            if isinstance(level, int) and rest:
                child_log.log(level, "%s", rest)
            else:
                child_log.info("%s", line)

    # -- the reader thread -----------------------------------------------------------------------

    def _read_loop(self) -> None:
        db = RawLog(self.path, self.config.rawlog_synchronous)
        persisted = truncated_below = db.mark()
        next_status = next_checkpoint = 0.0
        try:
            while not self._stopping.is_set():
                mark = self._mark()
                if mark > persisted:
                    db.advance(mark)
                    persisted = mark
                if time.monotonic() >= next_checkpoint:
                    db.checkpoint()
                    next_checkpoint = time.monotonic() + CHECKPOINT_EVERY_S
                chunk = self.config.rawlog_truncate_rows
                # One bounded chunk per loop; a full chunk means there may be more (rows left
                # by an earlier run): go on next time round.
                if persisted - truncated_below >= chunk and db.truncate(chunk) < chunk:
                    truncated_below = persisted
                now = time.monotonic()
                if now >= next_status:
                    self._refresh_status(db)
                    next_status = now + STATUS_EVERY_S
                if self._feed(db):
                    next_status = 0.0  # rows newer than the status were read: re-read it
                    continue
                if len(self.buffer) >= self.buffer.max_items:  # busy: poll for room
                    self._stopping.wait(self.config.rawlog_poll_s)
                elif self._wait_wake():  # idle: until the receiver appends or reports
                    next_status = 0.0
        finally:
            mark = self._mark()
            if mark > persisted:
                db.advance(mark)
            db.close()

    def _wait_wake(self) -> bool:
        """Sleep until the receiver writes to the wake-up pipe (True) or IDLE_WAIT_S passed."""
        readable, _, _ = select.select([self._wake_r], [], [], IDLE_WAIT_S)
        if not readable:
            return False
        try:
            while os.read(self._wake_r, 4096):
                pass
        except BlockingIOError:
            pass
        return True

    def _mark(self) -> int:
        with self._lock:
            if self._inflight:
                return min(self._cursor, min(self._inflight) - 1)
            return self._cursor

    def _refresh_status(self, db: RawLog) -> None:
        was = self.status.subscribed and self.status.pid == self.child_pid
        self.status = db.status()  # then the last id: it covers every row the status counts
        self._seen_last_id = db.backlog().last_id
        self.backlog_rows = max(0, self._seen_last_id - self._cursor)
        now = self.status.subscribed and self.status.pid == self.child_pid
        if now and not was and self._on_subscribed is not None:
            self._on_subscribed()

    def _feed(self, db: RawLog) -> bool:
        """Hand the next rows over (urgent ones first); False when there was nothing."""
        room = self.buffer.max_items - len(self.buffer)
        if room <= 0:
            return False
        rows = self._fast_lane(db, room)
        rest = db.read_after(self._cursor, min(READ_CHUNK, room - len(rows)))
        with self._lock:
            for row in rows:
                self._inflight.add(row.id)
                self._ahead.add(row.id)
            for row in rest:
                if row.id in self._ahead:
                    self._ahead.discard(row.id)
                else:
                    self._inflight.add(row.id)
                    rows.append(row)
            if rest:
                self._cursor = rest[-1].id
        for row in rows:
            self.buffer.put(_delivery(row), self._stopping.is_set)
        return bool(rows or rest)

    def _fast_lane(self, db: RawLog, room: int) -> list[LogRow]:
        """Urgent rows beyond the cursor with their gateways' earlier unread rows, in order."""
        picked: dict[int, LogRow] = {}
        # Per gateway (its first uplink topic): the highest id already handed over ahead.
        self._lane_after = {k: v for k, v in self._lane_after.items() if v > self._cursor}
        for uid, utopic in db.urgent_after(max(self._cursor, self._urgent_seen), URGENT_SCAN):
            left = room - len(picked)
            if left <= 0:
                break
            topics = _gateway_topics(utopic)
            after = max(self._cursor, self._lane_after.get(topics[0], 0))
            rows = [] if uid <= after else db.rows_of_topics(topics, after, uid, left)
            for row in rows:
                if row.id not in self._ahead:
                    picked[row.id] = row
            if rows:
                self._lane_after[topics[0]] = rows[-1].id
            if uid > after and (not rows or rows[-1].id != uid):
                break  # its gateway's backlog did not fit: the rest next time
            self._urgent_seen = uid
        if picked:
            self.ahead_rows += len(picked)
        return [picked[i] for i in sorted(picked)]

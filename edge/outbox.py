"""Store-and-forward: every uplink message is on disk before anyone tries to send it.

One SQLite file in WAL mode. A message is stored whole (its encoded payload, with the msg_id,
boot id and seq it got when it was made; zlib-compressed, see :func:`pack`) in one of four
lanes; the sender reads a batch in lane order, publishes it with QoS1 and deletes a row only
after the broker's PUBACK. A crash or ``kill -9`` between publish and delete means the row is
sent again: at-least-once, and the msg_id lets the cloud drop the duplicate.

Lanes, sent in this order: ``SAFETY`` (safety device events), ``PRIORITY`` (access events and
command acks), ``EVENT`` (other device events), ``TELEMETRY``.

Drop policy (the disk budget): the database's pages in use (:meth:`Outbox.used_bytes`) may not
exceed ``budget_bytes``. When a put takes it over, the oldest TELEMETRY rows are deleted until
it fits, then the oldest EVENT rows. SAFETY and PRIORITY rows are never dropped: if they alone
exceed the budget they are kept and ``over_budget`` counts it. Rows already handed to the sender
are not dropped (their PUBACK frees the space). Every drop is counted (messages and readings) in the
``counters`` table, which survives restarts.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from protocols.codec import channel_of, encode
from protocols.messages import (
    AccessEvent,
    CommandAck,
    DeviceEvent,
    Envelope,
    EventPriority,
    Telemetry,
)
from protocols.topics import Channel

log = logging.getLogger(__name__)

DROP_LOG_SECONDS = 60.0
ROW_OVERHEAD = 96  # bytes per row beyond the payload, for the stored_bytes estimate
COMPRESS_LEVEL = 1  # zlib: JSON readings shrink ~5x for a few microseconds per message


def pack(payload: bytes) -> bytes:
    """What is stored for an encoded message: zlib-compressed (JSON compresses well)."""
    return zlib.compress(payload, COMPRESS_LEVEL)


def unpack(stored: bytes) -> bytes:
    """The encoded message back from a stored row (rows stored as plain JSON also read)."""
    return stored if stored[:1] == b"{" else zlib.decompress(stored)


HISTORICAL_FALSE = b'"historical":false'
HISTORICAL_TRUE = b'"historical":true'


class Lane(IntEnum):
    SAFETY = 0
    PRIORITY = 1
    EVENT = 2
    TELEMETRY = 3

    @property
    def droppable(self) -> bool:
        return self in (Lane.EVENT, Lane.TELEMETRY)


DROP_ORDER = (Lane.TELEMETRY, Lane.EVENT)


def lane_of(message: Envelope) -> Lane:
    if isinstance(message, DeviceEvent):
        return Lane.SAFETY if message.priority is EventPriority.SAFETY else Lane.EVENT
    if isinstance(message, AccessEvent | CommandAck):
        return Lane.PRIORITY
    return Lane.TELEMETRY


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    lane: Lane
    channel: Channel
    msg_id: str
    created: float
    payload: bytes

    def payload_for_send(self, historical: bool) -> bytes:
        """The stored payload, flagged ``historical`` when it is a replay.

        Envelope fields are serialised before a model's own fields and none of them can contain
        the marker, so the first occurrence is the envelope's flag.
        """
        if historical:
            return self.payload.replace(HISTORICAL_FALSE, HISTORICAL_TRUE, 1)
        return self.payload


COUNTERS = (
    "stored",
    "sent",
    "dropped_messages",
    "dropped_readings",
    "dropped_telemetry",
    "dropped_events",
    "over_budget",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lane INTEGER NOT NULL,
    channel TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    created REAL NOT NULL,
    items INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox (lane, id);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def connect(path: Path, synchronous: str = "full") -> sqlite3.Connection:
    """Open the edge database (WAL, autocommit; transactions are explicit)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={'FULL' if synchronous == 'full' else 'NORMAL'}")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    return conn


class Outbox:
    """The persistent queue. Used from one thread (the agent's event loop)."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        budget_bytes: int,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.conn = conn
        self.budget_bytes = budget_bytes
        self.clock = clock
        self._cursor: dict[Lane, int] = dict.fromkeys(Lane, 0)
        self.on_put: Callable[[], None] | None = None
        self._drop_logged = -DROP_LOG_SECONDS
        self._page_size: int = conn.execute("PRAGMA page_size").fetchone()[0]
        row = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._depth: int = row[0]
        self._bytes: int = row[1] + row[0] * ROW_OVERHEAD
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        for name, value in conn.execute("SELECT name, value FROM counters"):
            if name in self.counters:
                self.counters[name] = value

    @classmethod
    def open(
        cls, path: Path, budget_bytes: int, synchronous: str = "full", **kw: Callable[[], float]
    ) -> Outbox:
        return cls(connect(path, synchronous), budget_bytes, **kw)

    def close(self) -> None:
        self.conn.close()

    # -- writing -------------------------------------------------------------------------

    def put(self, message: Envelope) -> int:
        """Store one message (made with its envelope already). Returns its row id."""

        return self.put_many([message])[-1]

    def put_many(self, messages: Iterable[Envelope]) -> list[int]:
        """Store messages in one transaction (one fsync), then apply the disk budget."""
        now = self.clock()
        rows: list[tuple[int, str, str, float, int, bytes]] = []
        for message in messages:
            payload = pack(encode(message))
            items = len(message.readings) if isinstance(message, Telemetry) else 1
            rows.append(
                (
                    int(lane_of(message)),
                    channel_of(message).value,
                    message.msg_id,
                    now,
                    items,
                    payload,
                )
            )
        ids: list[int] = []
        if not rows:
            return ids
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for row in rows:
                cur = conn.execute(
                    "INSERT INTO outbox (lane, channel, msg_id, created, items, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    row,
                )
                assert cur.lastrowid is not None
                ids.append(cur.lastrowid)
                self._depth += 1
                self._bytes += len(row[5]) + ROW_OVERHEAD
            self.counters["stored"] += len(rows)
            if self.used_bytes() > self.budget_bytes:
                self._enforce_budget(any(not Lane(r[0]).droppable for r in rows))
            self._save_counters()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._reload()
            raise
        if self.on_put is not None:
            self.on_put()
        return ids

    def used_bytes(self) -> int:
        """Bytes of the database in use (pages minus free pages): what the budget limits.

        SQLite reuses free pages, so the file stays at about the budget (plus its write-ahead
        log, checkpointed every ~4 MB).
        """
        pages = self.conn.execute("PRAGMA page_count").fetchone()[0]
        free = self.conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages - free) * self._page_size

    def _enforce_budget(self, protected_put: bool) -> None:
        for lane in DROP_ORDER:
            while self.used_bytes() > self.budget_bytes:
                # Rows already handed to the sender (id <= cursor) are on their way: their
                # PUBACK frees the space, and dropping them would count a delivered message.
                victims = self.conn.execute(
                    "SELECT id, length(payload), items FROM outbox WHERE lane = ? AND id > ?"
                    " ORDER BY id LIMIT 64",
                    (int(lane), self._cursor[lane]),
                ).fetchall()
                if not victims:
                    break
                for row_id, size, items in victims:
                    # one at a time: a page is freed only when its last row goes
                    self.conn.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                    self._bytes -= size + ROW_OVERHEAD
                    self._depth -= 1
                    self.counters["dropped_messages"] += 1
                    if lane is Lane.TELEMETRY:
                        self.counters["dropped_telemetry"] += 1
                        self.counters["dropped_readings"] += items
                    else:
                        self.counters["dropped_events"] += 1
                    if self.used_bytes() <= self.budget_bytes:
                        break
                self._log_drop()
        if protected_put and self.used_bytes() > self.budget_bytes:
            self.counters["over_budget"] += 1
            self._log_drop()

    def _log_drop(self) -> None:
        """Warn at the first drop and then at most once a minute (outages last for hours)."""
        now = time.monotonic()
        if now - self._drop_logged < DROP_LOG_SECONDS:
            return
        self._drop_logged = now
        c = self.counters
        log.warning(
            "outbox over its %d-byte budget: %d telemetry message(s) (%d readings) and %d"
            " event(s) dropped so far, oldest first; safety/access kept (%d over budget)",
            self.budget_bytes,
            c["dropped_telemetry"],
            c["dropped_readings"],
            c["dropped_events"],
            c["over_budget"],
        )

    def _save_counters(self) -> None:
        self.conn.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?)"
            " ON CONFLICT (name) DO UPDATE SET value = excluded.value",
            self.counters.items(),
        )

    def _reload(self) -> None:
        row = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._depth = row[0]
        self._bytes = row[1] + row[0] * ROW_OVERHEAD
        for name, value in self.conn.execute("SELECT name, value FROM counters"):
            if name in self.counters:
                self.counters[name] = value

    # -- reading and acknowledging ---------------------------------------------------------

    def next_batch(self, limit: int) -> list[Row]:
        """Rows not yet handed out since the last :meth:`rewind`, by lane then age."""
        out: list[Row] = []
        for lane in Lane:
            if len(out) >= limit:
                break
            for row_id, channel, msg_id, created, payload in self.conn.execute(
                "SELECT id, channel, msg_id, created, payload FROM outbox"
                " WHERE lane = ? AND id > ? ORDER BY id LIMIT ?",
                (int(lane), self._cursor[lane], limit - len(out)),
            ):
                out.append(Row(row_id, lane, Channel(channel), msg_id, created, unpack(payload)))
                self._cursor[lane] = row_id
        return out

    def rewind(self) -> None:
        """Hand out every stored row again (after the uplink lost its in-flight state)."""
        self._cursor = dict.fromkeys(Lane, 0)

    def ack(self, row_ids: Iterable[int]) -> int:
        """Delete rows the broker acknowledged. Returns how many were still stored."""
        ids = list(row_ids)
        if not ids:
            return 0
        conn = self.conn
        freed = count = 0
        conn.execute("BEGIN IMMEDIATE")
        try:
            for i in range(0, len(ids), 500):  # stay far below SQLite's bound-parameter limit
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                size, n = conn.execute(
                    "SELECT COALESCE(SUM(length(payload)), 0), COUNT(*) FROM outbox"
                    f" WHERE id IN ({marks})",
                    chunk,
                ).fetchone()
                conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
                freed += size
                count += n
            self.counters["sent"] += count
            self._save_counters()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._reload()
            raise
        self._bytes -= freed + count * ROW_OVERHEAD
        self._depth -= count
        return count

    # -- figures -----------------------------------------------------------------------------

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def stored_bytes(self) -> int:
        return self._bytes

    def depth_by_lane(self) -> dict[Lane, int]:
        counts = dict.fromkeys(Lane, 0)
        for lane, n in self.conn.execute("SELECT lane, COUNT(*) FROM outbox GROUP BY lane"):
            counts[Lane(lane)] = n
        return counts

    def oldest_age(self) -> float:
        """Seconds since the oldest stored message was made; 0 when empty."""
        row = self.conn.execute("SELECT MIN(created) FROM outbox").fetchone()
        return 0.0 if row[0] is None else max(0.0, self.clock() - row[0])

    # -- small persistent key/value store for the agent (applied config version, …) --------

    def get_kv(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_kv(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO kv (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

"""The raw log: a durable, append-only hand-over between the receiver process and ingest.

One SQLite file per ingest client id (``IngestConfig.rawlog_file()``), written by two processes:

* the **receiver** (``python -m cloud.ingest.receive``) appends the broker's deliveries as they
  came (topic, payload bytes, receive time, urgent flag) in one transaction per batch, then
  acknowledges exactly those to the broker, and keeps a one-row ``status`` (its counters);
* **ingest** (:class:`cloud.ingest.split.LogSource`) reads after its ``mark`` in id order,
  decodes and stores into the main database, and after that commit advances the ``mark`` (the
  highest id whose message, and every one before it, is stored). Rows below the mark are
  deleted in bounded chunks (``truncate``).

Ids come from ``AUTOINCREMENT``, so they are never reused, even after every row was deleted.
``cum`` is the running total of payload bytes up to and including the row: the backlog in
bytes is the last row's ``cum`` minus the marked row's (``backlog``), without a scan.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cloud.ingest.buffer import Delivery

Synchronous = Literal["NORMAL", "FULL"]

RECEIVER_AUTOCHECKPOINT = 10_000
"""WAL pages (4 KiB) after which a receiver's commit checkpoints by itself: a safety net. By
default SQLite checkpoints every 1,000 pages inside the commit that crosses them — copying and
syncing 4 MB on the receiver's acknowledgement path (measured: 60 % of its commit wall time).
Ingest's reader checkpoints instead (:meth:`RawLog.checkpoint`), in the other process."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS raw (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        received_at REAL NOT NULL,
        urgent INTEGER NOT NULL,
        cum INTEGER NOT NULL
    )""",
    # The fast lane finds urgent rows behind a backlog, then their gateway's earlier rows.
    "CREATE INDEX IF NOT EXISTS raw_urgent ON raw (id) WHERE urgent = 1",
    "CREATE INDEX IF NOT EXISTS raw_topic ON raw (topic, id)",
    """CREATE TABLE IF NOT EXISTS mark (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        stored INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO mark (one, stored) VALUES (1, 0)",
    """CREATE TABLE IF NOT EXISTS status (
        one INTEGER PRIMARY KEY CHECK (one = 1),
        pid INTEGER NOT NULL DEFAULT 0,
        connects INTEGER NOT NULL DEFAULT 0,
        subscribed INTEGER NOT NULL DEFAULT 0,
        received INTEGER NOT NULL DEFAULT 0,
        appended INTEGER NOT NULL DEFAULT 0,
        acked INTEGER NOT NULL DEFAULT 0,
        batches INTEGER NOT NULL DEFAULT 0,
        paused INTEGER NOT NULL DEFAULT 0,
        first_received REAL NOT NULL DEFAULT 0,
        last_acked REAL NOT NULL DEFAULT 0,
        updated REAL NOT NULL DEFAULT 0
    )""",
    "INSERT OR IGNORE INTO status (one) VALUES (1)",
)


@dataclass(frozen=True, slots=True)
class LogRow:
    """One raw delivery as the log holds it."""

    id: int
    topic: str
    payload: bytes
    received_at: float  # POSIX seconds
    urgent: bool
    cum: int


@dataclass(frozen=True, slots=True)
class ReceiverStatus:
    """The receiver process's counters since it started (written with each append).

    ``received``: deliveries paho handed over; ``appended``: rows committed to the log;
    ``acked``: PUBACKs sent (only for appended rows); ``paused``: times it stopped taking
    messages because the log's backlog reached the budget. ``first_received`` and
    ``last_acked`` are POSIX times (0: none yet) — the benchmark's clock.
    """

    pid: int = 0
    connects: int = 0
    subscribed: bool = False
    received: int = 0
    appended: int = 0
    acked: int = 0
    batches: int = 0
    paused: int = 0
    first_received: float = 0.0
    last_acked: float = 0.0
    updated: float = 0.0


@dataclass(frozen=True, slots=True)
class Backlog:
    """Rows and payload bytes after the mark (appended, not yet stored)."""

    rows: int
    bytes: int
    last_id: int
    mark: int


class RawLog:
    """One connection to the raw log file; use one per thread (sqlite3 connections are not
    shared between threads here)."""

    def __init__(
        self, path: Path, synchronous: Synchronous = "NORMAL", autocheckpoint: int | None = None
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is the level cloud/db.py gives the main SQLite database: in WAL mode a commit
        # survives this process (or the whole cloud) being killed, which is what the broker's
        # acknowledgement relies on; only an OS crash or power loss can roll back the last
        # commits. That is the same promise the in-process mode makes on SQLite. FULL fsyncs
        # the WAL on every commit (one per group-committed batch) and also survives power loss:
        # choose it with a PostgreSQL main database whose own commits are synchronous.
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.execute("PRAGMA busy_timeout=30000")
        if autocheckpoint is not None:  # WAL pages after which this connection's commit
            self._db.execute(f"PRAGMA wal_autocheckpoint={int(autocheckpoint)}")  # checkpoints
        with self._tx():
            for stmt in _SCHEMA:
                self._db.execute(stmt)
        last = self._db.execute("SELECT cum FROM raw ORDER BY id DESC LIMIT 1").fetchone()
        self._cum = int(last[0]) if last else 0

    def close(self) -> None:
        self._db.close()

    def _tx(self) -> _Commit:
        """``with self._tx():`` — BEGIN IMMEDIATE … COMMIT (ROLLBACK on error)."""
        self._db.execute("BEGIN IMMEDIATE")
        return _Commit(self._db)

    # -- the receiver's side ----------------------------------------------------------------

    def append(self, batch: Sequence[Delivery], status: ReceiverStatus | None = None) -> None:
        """Append ``batch`` in one transaction (and the receiver's status with it)."""
        rows = []
        cum = self._cum
        for d in batch:
            cum += len(d.payload)
            rows.append((d.topic, d.payload, d.received_at.timestamp(), int(d.urgent), cum))
        with self._tx():
            self._db.executemany(
                "INSERT INTO raw (topic, payload, received_at, urgent, cum) VALUES (?,?,?,?,?)",
                rows,
            )
            if status is not None:
                self._write_status(status)
        self._cum = cum

    def write_status(self, status: ReceiverStatus) -> None:
        with self._tx():
            self._write_status(status)

    def _write_status(self, s: ReceiverStatus) -> None:
        self._db.execute(
            "UPDATE status SET pid=?, connects=?, subscribed=?, received=?, appended=?, acked=?,"
            " batches=?, paused=?, first_received=?, last_acked=?, updated=? WHERE one = 1",
            (
                s.pid,
                s.connects,
                int(s.subscribed),
                s.received,
                s.appended,
                s.acked,
                s.batches,
                s.paused,
                s.first_received,
                s.last_acked,
                time.time(),
            ),
        )

    def backlog(self) -> Backlog:
        """What is appended but not yet stored (two index lookups, no scan)."""
        mark = self.mark()
        last = self._db.execute("SELECT id, cum FROM raw ORDER BY id DESC LIMIT 1").fetchone()
        if last is None:
            return Backlog(0, 0, mark, mark)
        at = self._db.execute(
            "SELECT cum FROM raw WHERE id <= ? ORDER BY id DESC LIMIT 1", (mark,)
        ).fetchone()
        marked_cum = int(at[0]) if at else 0
        return Backlog(max(0, last[0] - mark), max(0, last[1] - marked_cum), last[0], mark)

    # -- ingest's side ------------------------------------------------------------------------

    def mark(self) -> int:
        row = self._db.execute("SELECT stored FROM mark WHERE one = 1").fetchone()
        return int(row[0])

    def advance(self, mark: int) -> None:
        """Everything up to ``mark`` is stored in the main database (never moves back)."""
        with self._tx():
            self._db.execute("UPDATE mark SET stored = max(stored, ?) WHERE one = 1", (mark,))

    def read_after(self, after: int, limit: int) -> list[LogRow]:
        """Up to ``limit`` rows with id > ``after``, in id order."""
        cur = self._db.execute(
            "SELECT id, topic, payload, received_at, urgent, cum FROM raw"
            " WHERE id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [LogRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in cur]

    def urgent_after(self, after: int, limit: int) -> list[tuple[int, str]]:
        """(id, topic) of urgent rows with id > ``after``, in id order."""
        cur = self._db.execute(
            "SELECT id, topic FROM raw WHERE urgent = 1 AND id > ? ORDER BY id LIMIT ?",
            (after, limit),
        )
        return [(int(r[0]), str(r[1])) for r in cur]

    def rows_of_topics(
        self, topics: Sequence[str], after: int, upto: int, limit: int
    ) -> list[LogRow]:
        """Rows on ``topics`` with ``after`` < id ≤ ``upto``, in id order (the fast lane)."""
        marks = ",".join("?" * len(topics))
        cur = self._db.execute(
            "SELECT id, topic, payload, received_at, urgent, cum FROM raw"
            f" WHERE topic IN ({marks}) AND id > ? AND id <= ? ORDER BY id LIMIT ?",
            (*topics, after, upto, limit),
        )
        return [LogRow(r[0], r[1], r[2], r[3], bool(r[4]), r[5]) for r in cur]

    def truncate(self, chunk: int) -> int:
        """Delete at most ``chunk`` of the oldest rows below the mark (the marked row stays:
        its ``cum`` measures the backlog). Returns how many were deleted."""
        with self._tx():
            cur = self._db.execute(
                "DELETE FROM raw WHERE id < (SELECT stored FROM mark WHERE one = 1)"
                " AND id <= (SELECT min(id) FROM raw) + ? - 1",
                (chunk,),
            )
            return cur.rowcount

    def checkpoint(self) -> int:
        """A PASSIVE WAL checkpoint (copies what no reader needs into the file, never waits
        for the writer). Ingest's reader runs it, so the receiver's commits do not have to
        (``RECEIVER_AUTOCHECKPOINT``). Returns the WAL frames checkpointed."""
        row = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return max(0, int(row[2]))

    def status(self) -> ReceiverStatus:
        r = self._db.execute(
            "SELECT pid, connects, subscribed, received, appended, acked, batches, paused,"
            " first_received, last_acked, updated FROM status WHERE one = 1"
        ).fetchone()
        return ReceiverStatus(
            r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10]
        )

    def reset_status(self, pid: int) -> None:
        """A new receiver process starts: its counters start from zero."""
        self.write_status(ReceiverStatus(pid=pid))


class _Commit:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def poke(fd: int) -> None:
    """Write a wake-up byte to a non-blocking pipe (the receiver → ingest's idle reader).
    A full pipe already holds a wake-up; a broken one has no reader left."""
    with contextlib.suppress(BlockingIOError, BrokenPipeError):
        os.write(fd, b"!")

"""Fair turns for SQLite writers of one process.

SQLite has one write lock per database and its busy handler polls (up to every 100 ms): a writer
that commits and starts again at once (ingest under load) wins nearly every time, and an alert's
small transaction can wait seconds. This gate gives write transactions on one engine their turn
in arrival order: a connection takes a ticket at its first writing statement and gives the turn
back when its transaction ends. Readers never wait here. Writers in other processes still meet
SQLite's own busy handling.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

log = logging.getLogger(__name__)

HOLDING = "linli_write_turn"
WRITES = ("insert", "update", "delete", "replace", "create", "drop", "alter")


class TicketLock:
    """A first-come, first-served lock; a waiter that gives up leaves its turn to the next."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self._serving = 0
        self._abandoned: set[int] = set()

    def acquire(self, timeout: float) -> int | None:
        """Wait for this caller's turn; the ticket, or None after ``timeout`` seconds."""
        with self._cond:
            ticket = self._next
            self._next += 1
            if self._cond.wait_for(lambda: self._serving == ticket, timeout):
                return ticket
            self._abandoned.add(ticket)
            return None

    def release(self) -> None:
        with self._cond:
            self._serving += 1
            while self._serving in self._abandoned:
                self._abandoned.discard(self._serving)
                self._serving += 1
            self._cond.notify_all()


def install(engine: Engine, timeout: float = 30.0) -> TicketLock | None:
    """Give ``engine``'s SQLite write transactions fair turns. No-op for other databases."""
    if engine.dialect.name != "sqlite":
        return None
    lock = TicketLock()

    @event.listens_for(engine, "before_cursor_execute")
    def _turn(
        conn: Connection, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if HOLDING in conn.info or not statement.lstrip()[:7].lower().startswith(WRITES):
            return
        if lock.acquire(timeout) is None:
            log.warning("no write turn after %.0fs; relying on SQLite's busy timeout", timeout)
            return
        conn.info[HOLDING] = True

    def _done(conn: Connection) -> None:
        if conn.info.pop(HOLDING, False):
            lock.release()

    def _returned(dbapi_conn: Any, record: Any, *rest: Any) -> None:
        # A connection back in the pool (or thrown away) mid-transaction gives its turn back.
        if record is not None and record.info.pop(HOLDING, False):
            lock.release()

    event.listen(engine, "commit", _done)
    event.listen(engine, "rollback", _done)
    event.listen(engine.pool, "checkin", _returned)
    event.listen(engine.pool, "invalidate", _returned)
    return lock

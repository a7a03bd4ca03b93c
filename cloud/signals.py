"""Change signals between the processes of one cloud: "something on channel X changed".

A writer calls :func:`announce` inside its transaction (nothing happens unless it commits).
After the commit

* every :func:`subscribe`\\ r of this process on the same database is called at once, in the
  committing thread, with the payload (no delay in the same process);
* every :func:`listen`\\ er in *other* processes hears of it:

  - **PostgreSQL**: ``pg_notify(channel, "<origin>|<payload>")`` is sent with the transaction,
    and listeners ``LISTEN``; they get the payload;
  - **SQLite**: the writer bumps the channel's counter in ``signal_counters`` inside its
    transaction, and listeners poll every ``poll_s`` (0.5 s): ``PRAGMA data_version`` first,
    so an idle database costs one pragma per poll, the counters only when something was
    committed. A counter says *that* a channel changed, not what: listeners get ``None``.

A process never hears its own changes through :func:`listen` (its subscribers had them at
once): on PostgreSQL by the origin in the payload, on SQLite by the counter values its own
commits produced. ``listen`` also reports ``None`` once per channel whenever it (re)connects —
a change may have been missed while it was not listening.

Channels are lower-case identifiers (they are PostgreSQL channel names), e.g. ``linli_gate``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import BigInteger, String, event, func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Mapped, Session, mapped_column

from cloud.db import Base

log = logging.getLogger(__name__)

ORIGIN = uuid.uuid4().hex[:16]
"""This process (PostgreSQL payloads carry it, so a process skips its own notifications)."""
POLL_S = 0.5
"""How often a SQLite listener looks for changes made by other processes."""
MAX_PAYLOAD = 7000
"""PostgreSQL refuses notification payloads of 8000 bytes or more."""
_CHANNEL = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_INFO_KEY = "linli.signals.announced"
_UNSURE_KEY = "linli.signals.unsure"
OWN_KEPT = 4096
"""Own SQLite counter values remembered per channel (older ones are long polled past)."""
_lock = threading.Lock()
_subscribers: dict[tuple[str, str], list[Callable[[str], None]]] = {}
_own: dict[tuple[str, str], set[int]] = {}
"""(database, channel) → SQLite counter values this process's commits produced."""

Heard = Callable[[str, str | None], None]
"""``heard(channel, payload)`` — payload ``None``: changed, not known what."""


class SignalCounter(Base):
    """SQLite only: a counter per channel, bumped by each transaction that changes it."""

    __tablename__ = "signal_counters"

    channel: Mapped[str] = mapped_column(String(64), primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger)


def database_key(engine: Engine) -> str:
    """The same database gives the same key whichever engine (and path spelling) reaches it."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"sqlite:{os.path.realpath(str(url.database))}"
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def check_channel(channel: str) -> str:
    if not _CHANNEL.match(channel):
        raise ValueError(f"bad signal channel {channel!r}: lower-case letters, digits, _")
    return channel


def subscribe(engine: Engine, channel: str, callback: Callable[[str], None]) -> Callable[[], None]:
    """Call ``callback(payload)`` after each commit in this process that announced on
    ``channel`` on this database. Returns the function that unsubscribes."""
    key = (database_key(engine), check_channel(channel))
    with _lock:
        _subscribers.setdefault(key, []).append(callback)

    def unsubscribe() -> None:
        with _lock:
            callbacks = _subscribers.get(key, [])
            if callback in callbacks:
                callbacks.remove(callback)
            if not callbacks:
                _subscribers.pop(key, None)

    return unsubscribe


def announce(session: Session, channel: str, payload: str = "") -> None:
    """Say, inside the writer's transaction, that ``channel`` changed. Takes effect at commit
    (a rolled-back transaction or savepoint signals nothing to other processes)."""
    check_channel(channel)
    engine = session.get_bind().engine
    value: int | None = None
    if engine.dialect.name == "postgresql":
        session.execute(select(func.pg_notify(channel, _wire(payload))))
    else:
        value = _bump(session.connection(), channel)
    session.info.setdefault(_INFO_KEY, []).append((channel, payload, value))
    _after_commit_once(session)


def notify_now(engine: Engine, channel: str, payloads: Iterable[str]) -> None:
    """:func:`announce` each payload in a transaction of its own (for code that writes
    nothing else, e.g. a hook that forwards what another component stored)."""
    with Session(engine) as session:
        for payload in payloads:
            announce(session, channel, payload)
        session.commit()


def _wire(payload: str) -> str:
    wire = f"{ORIGIN}|{payload}"
    if len(wire.encode()) > MAX_PAYLOAD:
        raise ValueError(f"signal payload of {len(payload)} characters is too long")
    return wire


def _bump(conn: Connection, channel: str) -> int:
    row = conn.execute(
        text(
            "INSERT INTO signal_counters (channel, counter) VALUES (:c, 1) "
            "ON CONFLICT (channel) DO UPDATE SET counter = counter + 1 RETURNING counter"
        ),
        {"c": channel},
    ).scalar_one()
    return int(row)


def _after_commit_once(session: Session) -> None:
    if not event.contains(session, "after_commit", _after_commit):
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_soft_rollback", _after_rollback)


def _after_rollback(session: Session, previous: Any) -> None:
    if previous.parent is None:  # the whole transaction: nothing of it happened
        session.info.pop(_INFO_KEY, None)
        session.info.pop(_UNSURE_KEY, None)
    elif _INFO_KEY in session.info:
        # A savepoint undid a bump (or not): its counter value may never be committed, and
        # another process may commit that value later. Claiming none of this transaction's
        # values as our own costs at most a needless signal to ourselves, never a lost one.
        session.info[_UNSURE_KEY] = True


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: wait for the transaction
    announced: list[tuple[str, str, int | None]] = session.info.pop(_INFO_KEY, [])
    if not announced:
        return
    unsure = session.info.pop(_UNSURE_KEY, False)
    db = database_key(session.get_bind().engine)
    with _lock:
        for channel, _, value in announced:
            if value is not None and not unsure:
                own = _own.setdefault((db, channel), set())
                own.add(value)
                if len(own) > OWN_KEPT:
                    own -= set(sorted(own)[: OWN_KEPT // 2])
        callbacks = {c: list(_subscribers.get((db, c), ())) for c, _, _ in announced}
    for channel, payload, _ in announced:
        for callback in callbacks[channel]:
            callback(payload)


async def listen(
    engine: Engine,
    channels: Sequence[str],
    heard: Heard,
    *,
    poll_s: float = POLL_S,
    max_backoff_s: float = 30.0,
    ignore_own: bool = True,
) -> None:
    """Call ``heard(channel, payload)`` for changes other processes commit, until cancelled.
    ``heard`` runs in the event loop: it must be quick (wake something, queue work).
    ``ignore_own=False`` also reports this process's own changes (tests)."""
    for channel in channels:
        check_channel(channel)
    if engine.dialect.name == "postgresql":
        await _listen_pg(engine, channels, heard, max_backoff_s, ignore_own)
    else:
        await _poll_sqlite(engine, channels, heard, poll_s, max_backoff_s, ignore_own)


Batch = list[tuple[str, str | None]]
"""What a :func:`follow` handler gets: ``(channel, payload)`` pairs heard since its last call."""


async def follow(
    engine: Engine,
    channels: Sequence[str],
    handle: Callable[[Batch], None],
    failed: Callable[[SQLAlchemyError], None],
    *,
    ignore_own: bool = True,
    name: str = "signals",
) -> None:
    """:func:`listen`, and hand what was heard to ``handle`` in a worker thread, in batches (all
    that arrived while the previous batch was handled), until cancelled. ``handle`` reads the
    database (re-reads what changed); a database error goes to ``failed`` and the loop goes on —
    the next signal, or a reader's own poll, catches up."""
    heard: asyncio.Queue[tuple[str, str | None]] = asyncio.Queue()
    listener = asyncio.create_task(
        listen(engine, channels, lambda c, p: heard.put_nowait((c, p)), ignore_own=ignore_own),
        name=name,
    )
    try:
        while True:
            batch = [await heard.get()]
            while not heard.empty():
                batch.append(heard.get_nowait())
            try:
                await asyncio.to_thread(handle, batch)
            except SQLAlchemyError as exc:
                failed(exc)
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


async def _listen_pg(
    engine: Engine, channels: Sequence[str], heard: Heard, max_backoff_s: float, ignore_own: bool
) -> None:
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    backoff = 0.5
    while True:
        try:
            conn: psycopg.AsyncConnection[Any]
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                for channel in channels:
                    await conn.execute(f"LISTEN {channel}")  # checked: an identifier
                backoff = 0.5
                for channel in channels:
                    heard(channel, None)
                async for note in conn.notifies():
                    origin, sep, payload = note.payload.partition("|")
                    if not sep:  # a plain NOTIFY (psql, an older writer)
                        heard(note.channel, note.payload)
                    elif not (ignore_own and origin == ORIGIN):
                        heard(note.channel, payload)
        except psycopg.OperationalError as exc:
            log.warning("signal listener %s: %s; again in %.1fs", list(channels), exc, backoff)
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(max_backoff_s, backoff * 2)


class _Poller:
    """One SQLite connection of its own (``PRAGMA data_version`` is per connection).

    Its methods run in worker threads, and cancelling the ``await`` of one does not stop its
    thread: a lock makes :meth:`close` wait for a call still running (closing a SQLite
    connection another thread is using crashes the process)."""

    def __init__(self, engine: Engine, channels: Sequence[str], ignore_own: bool) -> None:
        self.db = database_key(engine)
        self.channels = list(channels)
        self.ignore_own = ignore_own
        self.conn = engine.connect()
        self.version: int | None = None
        self.seen: dict[str, int] = {}
        self._using = threading.Lock()

    def close(self) -> None:
        with self._using:
            self.conn.close()

    def start(self) -> None:
        with self._using:
            self.version = self._data_version()
            self.seen = self._counters()

    def changed(self) -> list[str]:
        """The channels other processes (or this one, if not ignored) changed since last time."""
        with self._using:
            return self._changed()

    def _changed(self) -> list[str]:
        version = self._data_version()
        if version == self.version:
            return []
        self.version = version
        now = self._counters()
        changed = []
        for channel in self.channels:
            last, value = self.seen.get(channel, 0), now.get(channel, 0)
            if value == last:
                continue
            with _lock:
                mine = {v for v in _own.get((self.db, channel), ()) if last < v <= value}
            if value < last or not self.ignore_own or len(mine) < value - last:
                changed.append(channel)
        self.seen = now
        return changed

    def _data_version(self) -> int:
        return int(self.conn.exec_driver_sql("PRAGMA data_version").scalar_one())

    def _counters(self) -> dict[str, int]:
        rows = self.conn.execute(
            select(SignalCounter.channel, SignalCounter.counter).where(
                SignalCounter.channel.in_(self.channels)
            )
        ).all()
        self.conn.rollback()  # end the read transaction: later polls see new commits
        return {channel: int(counter) for channel, counter in rows}


async def _poll_sqlite(
    engine: Engine,
    channels: Sequence[str],
    heard: Heard,
    poll_s: float,
    max_backoff_s: float,
    ignore_own: bool,
) -> None:
    backoff = 0.5
    while True:
        poller = None
        try:
            poller = await asyncio.to_thread(_Poller, engine, channels, ignore_own)
            await asyncio.to_thread(poller.start)
            backoff = 0.5
            for channel in channels:
                heard(channel, None)
            while True:
                await asyncio.sleep(poll_s)
                for channel in await asyncio.to_thread(poller.changed):
                    heard(channel, None)
        except OperationalError as exc:  # locked too long, file gone: start again
            log.warning("signal poll %s: %s; again in %.1fs", list(channels), exc, backoff)
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(max_backoff_s, backoff * 2)
        finally:
            if poller is not None:
                await asyncio.to_thread(poller.close)

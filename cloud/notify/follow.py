"""Alerts, access events and notifications of *other* cloud processes, on this live stream.

In a scaled deployment (docs/scale-out.md) the rules run in a ``--role rules`` process while
the screens are connected to another one: without this module an alert raised there (or an
access event it evaluated, a notice it stored) reaches only that process's WebSocket clients.
:func:`install` makes them travel through :mod:`cloud.signals`, as
:mod:`cloud.governance.live` does for incidents — the committed rows are re-read by id, no
event is shipped through a signal:

* **alerts** (channel ``linli_alert``): every alert change worth a live event writes a line of
  the alert's audit trail (``alert_events``). A transaction of this app's sessions that wrote
  such lines announces their ids; :meth:`LiveShare.follow` in the other processes re-reads the
  lines and publishes ``live_event(alert as it is now, change)`` — the event the writer
  published. Lines of other kinds (``notified``, ``severity``) are not events.
* **alert repeats** (channel ``linli_alert_repeat``): an alert that only *repeated* (count and
  last seen bumped) writes no line; a transaction that bumped counts announces those alerts'
  ids (not those that also got a line of a change: that line's event carries the count). The
  other processes publish ``live_event(alert, "repeated")`` for each named alert whose count
  is above the one they last published — on SQLite (no ids), for each *active* alert whose
  count grew. Counts this app published (or bumped) are remembered, so a repeat is told once.
* **access events** (channel ``linli_access``): the rules runner publishes the access events of
  its sites and hands their ``msg_id``\\ s to :meth:`LiveShare.access_published` (it never
  waits: :meth:`LiveShare.follow` sends the signal); other processes rebuild the same event
  from ``access_events`` and ``ingest_messages``. A process whose runner owns a site never
  publishes that site's access events a second time.
* **in-app notifications** (channel ``linli_notice``): the notifier stores one
  ``notifications`` row per recipient (role, or user for a personal notice); a transaction of
  this app's sessions that stored some announces their ids, and the other processes publish
  one ``notification`` event per notice, for the same roles or users. A row keeps the notice's
  kind, severity, titles and time, not the rest: the rebuilt notice takes site, rule, subject,
  status, tier and place from its alert as it is now (empty for a notice about no alert, e.g. a
  drill's) — the console only reloads its bell list on it.

On PostgreSQL the signal names the rows; on SQLite it says only that some were written (within
~0.5 s), and the rows after the last one seen are read. After (re)connecting, at most
:data:`CATCH_UP` rows per table are published — the screens are not replayed history — and on
PostgreSQL those a little below the last seen that committed late while no listener was
connected (:func:`cloud.row_signals.unseen`). Events
this app published itself are skipped when their signal comes back (remembered ids).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event, func, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from cloud import signals
from cloud.alerts.states import Transition
from cloud.alerts.tables import Alert, AlertEvent, Notification
from cloud.alerts.views import AlertOut, live_event
from cloud.notify.dispatcher import PERSONAL
from cloud.notify.hub import Hub
from cloud.notify.live_events import access_event_of, notification_event
from cloud.row_signals import RowSignals, Tracked, chunks, ids_of, unseen
from cloud.storage.tables import AccessEventRow, StoredEnvelope

log = logging.getLogger(__name__)

ALERTS = "linli_alert"
ACCESS = "linli_access"
NOTES = "linli_notice"
REPEATS = "linli_alert_repeat"
CHANNELS = (ALERTS, ACCESS, NOTES, REPEATS)
CHANGES: dict[str, str] = {
    "raised": "created",
    "reopened": "reopened",
    "reraised": "reraised",
    "cleared": "cleared",
    "escalated": "escalated",
    **{t.value: t.value for t in Transition if t is not Transition.ESCALATE},  # escalated
}
"""Audit-trail line kind → the ``change`` of the live event published with it."""
IDS_PER_SIGNAL = {ALERTS: 500, NOTES: 500, ACCESS: 80, REPEATS: 500}
"""Ids per PostgreSQL notification (its payload stays under 8000 bytes): alert lines,
notifications (row ids), access events (msg_ids)."""
CATCH_UP = 200
"""Rows per table published at most for one "changed, not known what" (SQLite, reconnects)."""
OUTGOING_KEPT = 10_000
"""Access msg_ids waiting for their signal at most (the database is slow or down)."""
_ALERT_LINES = frozenset(CHANGES)
_REPEATED = "linli.live.repeated"
COUNTS_KEPT = 10_000
"""Alert counts remembered at most (the active alerts', to tell a repeat from none)."""


class LiveShare:
    """Shares this app's alert and access events with the other processes and publishes
    theirs (see the module docstring)."""

    def __init__(self, hub: Hub, owns: Callable[[str], bool] | None = None) -> None:
        self.hub = hub
        self.owns = owns
        """The sites whose access events this process's own rules runner publishes."""
        self.heard = 0
        """Events published for changes made elsewhere."""
        self._failures = 0
        self.dropped = 0
        """Rows left out by a bounded catch-up."""
        self.rows = RowSignals(
            [
                Tracked(AlertEvent, ALERTS, IDS_PER_SIGNAL[ALERTS], _is_alert_line),
                Tracked(Notification, NOTES, IDS_PER_SIGNAL[NOTES]),
            ],
            name="live",
            also=[ACCESS, REPEATS],
        )
        """What is on this hub already — this app's own and what :meth:`follow` published:
        alert lines and notifications (row ids), access events (msg_ids)."""
        self._marks = {ALERTS: 0, ACCESS: 0, NOTES: 0}
        self._floors = dict(self._marks)
        """The marks when :meth:`follow` started: nothing older is published."""
        self._postgres = False
        self._lock = threading.Lock()
        self._counts: dict[int, int] = {}
        """Alert id → the count last published for it here (own repeats included)."""
        self._outgoing: list[str] = []
        """Access events published here whose signal is not sent yet."""
        self._wake = asyncio.Event()

    @property
    def failures(self) -> int:
        return self._failures + self.rows.failures

    def install(self, sessions: sessionmaker[Session]) -> None:
        self.rows.install(sessions)
        event.listen(sessions, "after_flush", self._flushed)
        event.listen(sessions, "before_commit", self._before_commit)
        event.listen(sessions, "after_soft_rollback", self._after_rollback)

    # -- this app's own changes ----------------------------------------------------------------
    @staticmethod
    def _flushed(db: Session, _: object) -> None:
        """Note the alerts whose count this flush bumped (a repeat), and those that also got
        an audit line of a change (that line's event tells the other processes already)."""
        counted = {
            row.id: row.count
            for row in db.dirty
            if isinstance(row, Alert) and inspect(row).attrs.count.history.has_changes()
        }
        lined_now = {
            row.alert_id
            for row in db.new
            if isinstance(row, AlertEvent) and row.kind in _ALERT_LINES
        }
        if counted or lined_now:  # most flushes note nothing (and leave the session as it is)
            repeated, lined = db.info.setdefault(_REPEATED, ({}, set()))
            repeated.update(counted)
            lined.update(lined_now)

    def _before_commit(self, db: Session) -> None:
        if db.get_nested_transaction() is not None:
            return  # a savepoint is released: wait for the transaction itself
        repeated, lined = db.info.pop(_REPEATED, ({}, set()))
        ids = sorted(set(repeated) - lined)
        if not ids:
            return
        self._counted({i: repeated[i] for i in ids})
        self.rows.announce(db, REPEATS, ids, IDS_PER_SIGNAL[REPEATS])

    @staticmethod
    def _after_rollback(db: Session, previous: SessionTransaction) -> None:
        if previous.parent is None:
            db.info.pop(_REPEATED, None)

    def access_published(self, msg_ids: Sequence[str]) -> None:
        """The rules runner published these access events on this hub: tell the other processes
        (:meth:`follow` sends the signal; the runner never waits for the database here)."""
        if not msg_ids:
            return
        self.rows.remember(ACCESS, msg_ids)
        if len(self._outgoing) + len(msg_ids) > OUTGOING_KEPT:
            self._failures += 1
            log.warning("access events %s: signal queue full, other processes not told", msg_ids)
            return
        self._outgoing.extend(msg_ids)
        self._wake.set()

    async def _send_access(self, engine: Engine) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            msg_ids, self._outgoing = self._outgoing, []
            try:
                await asyncio.to_thread(announce_access, engine, msg_ids)
            except SQLAlchemyError as exc:  # they still went to this process's screens
                self._failures += 1
                log.warning("access events %s: no signal for other processes: %s", msg_ids, exc)

    # -- changes made elsewhere ----------------------------------------------------------------
    async def follow(self, sessions: sessionmaker[Session]) -> None:
        """Publish the alert changes, access events and notifications of other processes (and
        send this one's access signals), until cancelled."""
        engine = sessions.kw["bind"]
        self._marks = await asyncio.to_thread(_last_rows, sessions)
        self._floors = dict(self._marks)
        self._postgres = engine.dialect.name == "postgresql"
        self._counted(await asyncio.to_thread(_active_counts, sessions))
        sender = asyncio.create_task(self._send_access(engine), name="live-access-signals")
        try:
            await signals.follow(
                engine,
                CHANNELS,
                lambda batch: self._catch_up(sessions, batch),
                self._failed,
                name="live-signals",
            )
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)

    def _failed(self, exc: SQLAlchemyError) -> None:
        self._failures += 1
        log.warning("live events from elsewhere not published: %s", exc)

    def _catch_up(
        self, sessions: sessionmaker[Session], heard: list[tuple[str, str | None]]
    ) -> None:
        events: list[dict[str, Any]] = []
        with sessions() as db:
            readers = {
                ALERTS: self._alert_events,
                ACCESS: self._access_events,
                NOTES: self._notifications,
                REPEATS: self._repeats,  # after ALERTS: an alert's new event carries its count
            }
            for channel, read in readers.items():
                payloads = [p for c, p in heard if c == channel]
                if payloads:
                    events += read(db, payloads)
        for item in events:
            self.hub.publish(item)
            self.heard += 1

    def _alert_events(self, db: Session, payloads: list[str | None]) -> list[dict[str, Any]]:
        named = {i for p in payloads if p is not None for i in ids_of(p, int, ALERTS)}
        own = self.rows.own(ALERTS)
        query = (
            select(AlertEvent.id, AlertEvent.alert_id, AlertEvent.kind)
            .where(AlertEvent.kind.in_(_ALERT_LINES))
            .order_by(AlertEvent.id)
        )
        rows: list[tuple[int, int, str]] = []
        if named - own:
            rows += db.execute(query.where(AlertEvent.id.in_(sorted(named - own)))).all()
        if None in payloads:
            kinds = AlertEvent.kind.in_(_ALERT_LINES)
            missed = self._unseen(db, ALERTS, AlertEvent.id, AlertEvent.id, own, kinds)
            rows += db.execute(query.where(AlertEvent.id.in_(missed))).all() if missed else []
            rows += self._after_mark(db, ALERTS, query.where(AlertEvent.id > self._marks[ALERTS]))
        self._marks[ALERTS] = max([self._marks[ALERTS], *named, *(r[0] for r in rows)])
        events = []
        for line, alert_id, kind in sorted(set(rows)):
            alert = db.get(Alert, alert_id) if line not in own else None
            if alert is not None:
                events.append(live_event(AlertOut.of(alert), CHANGES[kind]))
                self._counted({alert.id: alert.count})
        self.rows.remember(ALERTS, (line for line, _, _ in rows))
        return events

    def _access_events(self, db: Session, payloads: list[str | None]) -> list[dict[str, Any]]:
        named = {i for p in payloads if p is not None for i in ids_of(p, str, ACCESS)}
        own = self.rows.own(ACCESS)
        query = select(AccessEventRow, StoredEnvelope.boot_id, StoredEnvelope.seq).join(
            StoredEnvelope, StoredEnvelope.msg_id == AccessEventRow.msg_id
        )
        rows: list[tuple[AccessEventRow, str, int]] = []
        if named - own:
            wanted = query.where(AccessEventRow.msg_id.in_(sorted(named - own)))
            rows += db.execute(wanted).all()
        if None in payloads:
            missed = self._unseen(db, ACCESS, AccessEventRow.id, AccessEventRow.msg_id, own)
            if missed:
                rows += db.execute(query.where(AccessEventRow.msg_id.in_(missed))).all()
            after = query.where(AccessEventRow.id > self._marks[ACCESS])
            rows += self._after_mark(db, ACCESS, after.order_by(AccessEventRow.id))
        self._marks[ACCESS] = max([self._marks[ACCESS], *(r[0].id for r in rows)])
        events = []
        for row, boot_id, seq in sorted({r[0].id: r for r in rows}.values(), key=_first_id):
            if row.msg_id in own or (self.owns is not None and self.owns(row.site)):
                continue  # this process's runner publishes it (or did)
            built = access_event_of(row, boot_id, seq)
            if built is not None:
                events.append(built)
        self.rows.remember(ACCESS, (row.msg_id for row, _, _ in rows))
        return events

    def _notifications(self, db: Session, payloads: list[str | None]) -> list[dict[str, Any]]:
        named = {i for p in payloads if p is not None for i in ids_of(p, int, NOTES)}
        own = self.rows.own(NOTES)
        query = select(Notification).order_by(Notification.id)
        rows: list[Notification] = []
        if named - own:
            rows += db.scalars(query.where(Notification.id.in_(sorted(named - own))))
        if None in payloads:
            missed = self._unseen(db, NOTES, Notification.id, Notification.id, own)
            rows += db.scalars(query.where(Notification.id.in_(missed))) if missed else []
            after = query.where(Notification.id > self._marks[NOTES])
            rows += [r for (r,) in self._after_mark(db, NOTES, after)]
        self._marks[NOTES] = max([self._marks[NOTES], *named, *(r.id for r in rows)])
        told: dict[tuple[Any, ...], list[Notification]] = {}
        for row in sorted({r.id: r for r in rows if r.id not in own}.values(), key=_row_id):
            key = (row.ts, row.alert_id, row.reason, row.title_en, row.role == PERSONAL)
            told.setdefault(key, []).append(row)  # one notice, one row per recipient
        self.rows.remember(NOTES, (row.id for row in rows))
        return [notification_event(db, same) for same in told.values()]

    def _repeats(self, db: Session, payloads: list[str | None]) -> list[dict[str, Any]]:
        """``repeated`` events of the alerts whose count grew: those named (PostgreSQL) or,
        for a ``None``, the active alerts whose count is above the one last published here."""
        named = {i for p in payloads if p is not None for i in ids_of(p, int, REPEATS)}
        with self._lock:
            known = dict(self._counts)
        grown = set(named)
        if None in payloads:
            active = db.execute(
                select(Alert.id, Alert.count).where(Alert.active_key.is_not(None))
            ).all()
            # Unknown here: an alert raised here or one whose "created" passed by; a repeat
            # makes its count 2 or more.
            grown.update(i for i, count in active if count > known.get(i, 1))
        if len(grown) > CATCH_UP:
            self.dropped += 1
            log.warning("%d alert repeats at once: not replayed", len(grown))
            grown = set()
        events = []
        for alert in db.scalars(select(Alert).where(Alert.id.in_(sorted(grown)))):
            if alert.count > known.get(alert.id, 0):
                events.append(live_event(AlertOut.of(alert), "repeated"))
            self._counted({alert.id: alert.count})
        return events

    def _counted(self, counts: dict[int, int]) -> None:
        with self._lock:
            self._counts.update(counts)
            if len(self._counts) > COUNTS_KEPT:
                for i in sorted(self._counts)[: COUNTS_KEPT // 2]:
                    del self._counts[i]

    def _unseen(
        self, db: Session, channel: str, id_col: Any, key_col: Any, own: set[Any], *where: Any
    ) -> list[Any]:
        """PostgreSQL, after a (re)connect: rows a little below the mark that committed while
        no listener was connected (:func:`cloud.row_signals.unseen`), :data:`CATCH_UP` at most.
        (On SQLite a writer holds the database until it commits: ids commit in order.)"""
        if not self._postgres:
            return []
        floor, mark = self._floors[channel], self._marks[channel]
        missed = unseen(db, id_col, key_col, floor, mark, own, *where)
        if len(missed) > CATCH_UP:
            self.dropped += 1
            log.warning("%s: %d rows missed while away: not replayed", channel, len(missed))
            self.rows.remember(channel, missed)
            return []
        return missed

    def _after_mark(self, db: Session, channel: str, query: Any) -> list[Any]:
        """The rows after the mark, the newest :data:`CATCH_UP` of them at most."""
        rows = list(db.execute(query.limit(CATCH_UP + 1)).all())
        if len(rows) > CATCH_UP:
            ids = {ALERTS: AlertEvent.id, ACCESS: AccessEventRow.id, NOTES: Notification.id}
            top = int(db.scalar(select(func.max(ids[channel]))) or 0)
            self.dropped += 1
            log.warning(
                "%s: more than %d rows since the last seen: not replayed", channel, CATCH_UP
            )
            self._marks[channel] = top
            self._floors[channel] = top  # and not looked back at after a reconnect either
            return []
        return rows


def _is_alert_line(row: AlertEvent) -> bool:
    return row.kind in _ALERT_LINES


def _row_id(row: Notification) -> int:
    return row.id


def _first_id(row: tuple[AccessEventRow, str, int]) -> int:
    return row[0].id


def _last_rows(sessions: sessionmaker[Session]) -> dict[str, int]:
    with sessions() as db:
        return {
            ALERTS: int(db.scalar(select(func.max(AlertEvent.id))) or 0),
            ACCESS: int(db.scalar(select(func.max(AccessEventRow.id))) or 0),
            NOTES: int(db.scalar(select(func.max(Notification.id))) or 0),
        }


def _active_counts(sessions: sessionmaker[Session]) -> dict[int, int]:
    with sessions() as db:
        rows = db.execute(select(Alert.id, Alert.count).where(Alert.active_key.is_not(None)))
        return {alert_id: count for alert_id, count in rows}


def install(
    sessions: sessionmaker[Session], hub: Hub, owns: Callable[[str], bool] | None = None
) -> LiveShare:
    """Share the alert changes ``sessions`` commit with the other processes (at app start);
    run :meth:`LiveShare.follow` beside the app to publish theirs on ``hub``."""
    share = LiveShare(hub, owns)
    share.install(sessions)
    return share


def announce_access(engine: Engine, msg_ids: Sequence[str]) -> None:
    """Tell the other processes that the access events ``msg_ids`` were published (by a rules
    runner, on its hub): they publish them on theirs."""
    payloads = [json.dumps(c) for c in chunks(msg_ids, IDS_PER_SIGNAL[ACCESS])]
    signals.notify_now(engine, ACCESS, payloads)


AccessHook = Callable[[Sequence[str]], None]
"""What the rules runner calls with the msg_ids of the access events it published."""

"""Incident changes on the live stream (``/api/stream``), once their transaction has committed.

Every change to an incident or its whistles writes a timeline line (:func:`journal.record`),
which marks the incident as touched in its session. :func:`install` hooks the app's
sessionmaker: when a transaction that touched incidents commits, one event per incident goes
to the hub::

    {"type": "incident", "id": 7, "site": "site-1", "state": "dispatched", "drill": false,
     "actions": ["dispatch"], "reporter": "resident1", "roles": [...], "users": [...]}

``roles``/``users``/``reporter`` say who may see it, as :mod:`cloud.governance.access` decides
(the stream filters on them and does not pass them on): managers, admins, guards and the
viewer; the assignee and the members of the organisations it was dispatched or whistled to; a
resident only for their own report. A rolled-back transaction publishes nothing, nor does
what a rolled-back savepoint did. Screens re-read what they show when such an event arrives.

Changes committed elsewhere — another cloud process on the same database (the ``--role rules``
process grouping alerts into incidents and blowing whistles), or another app in this process —
arrive through :mod:`cloud.signals` (channel ``linli_incident``): :meth:`LiveIncidents.follow`
re-reads the timeline lines they wrote and publishes the same events, built here. On
PostgreSQL the signal names the timeline lines (NOTIFY); on SQLite it says only that some were
written (within ~0.5 s), and the lines after the last one seen are read (on PostgreSQL after a
reconnect also those a little below it that committed late while no listener was connected:
:func:`cloud.row_signals.unseen`). A change is published once per app: what its own sessions
committed goes out directly and is skipped when its signal comes back.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from cloud import signals
from cloud.governance.access import SEE_ALL
from cloud.governance.tables import Incident, IncidentEvent, OrgMember, Whistle
from cloud.notify.hub import Hub
from cloud.row_signals import RowSignals, Tracked, ids_of, unseen

log = logging.getLogger(__name__)

KIND = "incident"
_TOUCHED = "linli.gov.touched"
_READY = "linli.gov.events"
CHANNEL = "linli_incident"
LINES_PER_SIGNAL = 500
"""Timeline line ids per PostgreSQL notification (its payload must stay under 8000 bytes)."""
_SEE_ALL = sorted(role.value for role in SEE_ALL)


Touch = tuple[SessionTransaction | None, int, str]
"""(the savepoint it happened in, None outside any; incident id; action)."""


def touched(db: Session, incident_id: int, action: str) -> None:
    """Note that ``incident_id`` changed in this session's transaction (by ``action``)."""
    db.info.setdefault(_TOUCHED, []).append((db.get_nested_transaction(), incident_id, action))


def _changed(touches: list[Touch]) -> dict[int, list[str]]:
    changed: dict[int, list[str]] = {}
    for _, incident_id, action in touches:
        changed.setdefault(incident_id, []).append(action)
    return changed


def incident_event(db: Session, incident_id: int, actions: list[str]) -> dict[str, Any] | None:
    """The stream event of an incident as it is now in ``db`` (None if it is gone)."""
    row = db.get(Incident, incident_id)
    if row is None:
        return None
    orgs = set(db.scalars(select(Whistle.org_id).where(Whistle.incident_id == incident_id)))
    if row.org_id is not None:
        orgs.add(row.org_id)
    users = set(db.scalars(select(OrgMember.username).where(OrgMember.org_id.in_(orgs))))
    if row.assignee:
        users.add(row.assignee)
    return {
        "type": KIND,
        "id": row.id,
        "site": row.site,
        "state": row.state,
        "drill": row.drill,
        "actions": list(dict.fromkeys(actions)),
        "reporter": row.reporter,
        "roles": _SEE_ALL,
        "users": sorted(users),
    }


class LiveIncidents:
    """Publishes the incidents a committed transaction touched, and those changed elsewhere
    (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.published = 0
        self.heard = 0
        """Events published for changes committed elsewhere."""
        self._failures = 0
        self.lines = RowSignals(
            [Tracked(IncidentEvent, CHANNEL, LINES_PER_SIGNAL)], name="incident-lines"
        )
        """This app's timeline lines, announced to the other processes and skipped when their
        signal comes back."""
        self._mark = 0
        """The last timeline line seen by :meth:`follow` (SQLite: where the next read starts)."""
        self._floor = 0
        """The last line when :meth:`follow` started: nothing older is published."""
        self._postgres = False

    @property
    def failures(self) -> int:
        return self._failures + self.lines.failures

    def install(self, sessions: sessionmaker[Session]) -> None:
        self.lines.install(sessions)
        event.listen(sessions, "before_commit", self._before_commit)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_soft_rollback", self._after_rollback)

    # -- this app's own changes ----------------------------------------------------------------
    def _before_commit(self, db: Session) -> None:
        if db.get_nested_transaction() is not None:
            return  # a savepoint is released: wait for the transaction itself
        changed = _changed(db.info.pop(_TOUCHED, []))
        if not changed:
            return
        try:
            events = [incident_event(db, i, a) for i, a in sorted(changed.items())]
        except SQLAlchemyError as exc:  # the change itself must still commit
            self._failures += 1
            log.error("incidents %s: live events not built: %s", sorted(changed), exc)
            return
        db.info.setdefault(_READY, []).extend(e for e in events if e is not None)

    def _after_commit(self, db: Session) -> None:
        released = db.get_nested_transaction()
        if released is not None:  # a savepoint: its changes now belong to the one around it
            around = released.parent if released.parent and released.parent.nested else None
            db.info[_TOUCHED] = [
                (around if t[0] is released else t[0], t[1], t[2])
                for t in db.info.get(_TOUCHED, [])
            ]
            return
        for item in db.info.pop(_READY, []):
            self.hub.publish(item)
            self.published += 1

    def _after_rollback(self, db: Session, previous: SessionTransaction) -> None:
        if previous.parent is None:  # the whole transaction: its changes never happened
            db.info.pop(_TOUCHED, None)
            db.info.pop(_READY, None)
        elif previous.nested:  # a savepoint: what happened inside it did not
            kept = [t for t in db.info.get(_TOUCHED, []) if t[0] is not previous]
            db.info[_TOUCHED] = kept

    # -- changes committed elsewhere -----------------------------------------------------------
    async def follow(self, sessions: sessionmaker[Session]) -> None:
        """Publish incident changes committed by other processes (and other apps of this
        one) on the same database, until cancelled."""
        engine = sessions.kw["bind"]
        self._mark = self._floor = await asyncio.to_thread(_last_line, sessions)
        self._postgres = engine.dialect.name == "postgresql"
        await signals.follow(
            engine,
            [CHANNEL],
            lambda batch: self._catch_up(sessions, [payload for _, payload in batch]),
            self._failed,
            ignore_own=False,
            name="incident-signals",
        )

    def _failed(self, exc: SQLAlchemyError) -> None:
        self._failures += 1
        log.warning("incident changes from elsewhere not published: %s", exc)

    def _catch_up(self, sessions: sessionmaker[Session], heard: list[str | None]) -> None:
        """Publish the incidents of the timeline lines named in ``heard`` (PostgreSQL) or, for
        a ``None``, of every line after the mark — leaving out this app's own lines."""
        named = {i for p in heard if p is not None for i in ids_of(p, int, CHANNEL)}
        own = self.lines.own(CHANNEL)
        wanted = named - own
        if not wanted and None not in heard:
            self._mark = max(self._mark, *named) if named else self._mark
            return  # only this app's own changes came back
        with sessions() as db:
            query = select(IncidentEvent.id, IncidentEvent.incident_id, IncidentEvent.action)
            rows: list[tuple[int, int, str]] = []
            if wanted:
                rows += db.execute(query.where(IncidentEvent.id.in_(sorted(wanted)))).all()
            if None in heard:  # something changed, not known what: the lines after the mark
                if self._postgres:  # (re)connected: and those committed late while away
                    line_id = IncidentEvent.id
                    missed = unseen(db, line_id, line_id, self._floor, self._mark, own)
                    rows += db.execute(query.where(line_id.in_(missed))).all() if missed else []
                rows += db.execute(query.where(IncidentEvent.id > self._mark)).all()
            changed: dict[int, list[str]] = {}
            for line, incident_id, action in sorted(set(rows)):
                if line not in own:
                    changed.setdefault(incident_id, []).append(action)
            events = [incident_event(db, i, a) for i, a in sorted(changed.items())]
        self._mark = max([self._mark, *named, *(line for line, _, _ in rows)])
        self.lines.remember(CHANNEL, (line for line, _, _ in rows))  # not published twice
        for item in events:
            if item is not None:
                self.hub.publish(item)
                self.heard += 1


def _last_line(sessions: sessionmaker[Session]) -> int:
    with sessions() as db:
        return int(db.scalar(select(func.max(IncidentEvent.id))) or 0)


def install(sessions: sessionmaker[Session], hub: Hub) -> LiveIncidents:
    """Publish committed incident changes of ``sessions`` on ``hub`` (at app start); run
    :meth:`LiveIncidents.follow` beside the app for those committed elsewhere."""
    live = LiveIncidents(hub)
    live.install(sessions)
    return live

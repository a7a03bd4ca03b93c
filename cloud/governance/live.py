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
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from cloud.governance.access import SEE_ALL
from cloud.governance.tables import Incident, OrgMember, Whistle
from cloud.notify.hub import Hub

log = logging.getLogger(__name__)

KIND = "incident"
_TOUCHED = "linli.gov.touched"
_READY = "linli.gov.events"
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
    """Publishes the incidents a committed transaction touched (see the module docstring)."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.published = 0
        self.failures = 0

    def install(self, sessions: sessionmaker[Session]) -> None:
        event.listen(sessions, "before_commit", self._before_commit)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_soft_rollback", self._after_rollback)

    def _before_commit(self, db: Session) -> None:
        if db.get_nested_transaction() is not None:
            return  # a savepoint is released: wait for the transaction itself
        changed = _changed(db.info.pop(_TOUCHED, []))
        if not changed:
            return
        try:
            events = [incident_event(db, i, a) for i, a in sorted(changed.items())]
        except SQLAlchemyError as exc:  # the change itself must still commit
            self.failures += 1
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


def install(sessions: sessionmaker[Session], hub: Hub) -> LiveIncidents:
    """Publish committed incident changes of ``sessions`` on ``hub`` (at app start)."""
    live = LiveIncidents(hub)
    live.install(sessions)
    return live

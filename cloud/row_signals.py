"""Announce the rows a transaction inserted, by id, to the other processes of the cloud.

The live followers (:mod:`cloud.governance.live`, :mod:`cloud.notify.follow`) share changes
the same way: a session of this app inserts rows of some kinds (timeline lines, alert audit
lines, notifications); when its transaction commits, their ids go out on a channel of
:mod:`cloud.signals`, and other processes re-read those rows and publish their events. This
module is that bookkeeping, once:

* rows are noted as they are flushed (``pending_to_persistent``); a row inserted in a savepoint
  that was rolled back is no longer persistent at commit and is left out;
* at commit (the outermost transaction, not a released savepoint) the ids are remembered as
  this app's own *before* they are announced — the signal can come back before the commit
  returns — then announced in chunks (a PostgreSQL payload stays under 8000 bytes);
* a transaction that fails after that (the commit itself) forgets them again: its ids may be
  another writer's next ones;
* an announcement that fails is counted and logged, and the change itself still commits.

:meth:`RowSignals.own` is what a follower skips when the signal comes back; it may also
:meth:`RowSignals.remember` what it published itself for other reasons.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import event, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction, sessionmaker

from cloud import signals

log = logging.getLogger(__name__)
_T = TypeVar("_T")

OWN_KEPT = 10_000
"""Ids remembered per channel (the older half is dropped beyond; long since come back)."""
LOOKBACK = 1000
"""PostgreSQL, after a listener (re)connects: how far below the last id seen a follower looks
for rows it has not published (see :func:`unseen`)."""


def _always(_: Any) -> bool:
    return True


@dataclass(frozen=True)
class Tracked:
    """Rows of ``table`` (those ``wanted`` says) are announced on ``channel``, ``per_signal``
    ids per payload."""

    table: type[Any]
    channel: str
    per_signal: int = 500
    wanted: Callable[[Any], bool] = _always


class RowSignals:
    """See the module docstring. ``install`` it on the app's sessionmaker."""

    def __init__(self, tracked: Iterable[Tracked], name: str, *, also: Iterable[str] = ()) -> None:
        """``also``: channels whose ids the caller announces itself, remembered here too."""
        self.tracked = tuple(tracked)
        self.name = name
        self.failures = 0
        """Announcements that failed (the other processes were not told)."""
        self._key = f"linli.rows.{name}"
        self._lock = threading.Lock()
        channels = [t.channel for t in self.tracked] + list(also)
        self._own: dict[str, set[Any]] = {signals.check_channel(c): set() for c in channels}

    def install(self, sessions: sessionmaker[Session]) -> None:
        event.listen(sessions, "pending_to_persistent", self._written)
        event.listen(sessions, "before_commit", self._before_commit)
        event.listen(sessions, "after_commit", self._after_commit)
        event.listen(sessions, "after_soft_rollback", self._after_rollback)

    def own(self, channel: str) -> set[Any]:
        """A copy of the ids this app committed on ``channel``, and those a follower
        remembered (published or skipped)."""
        with self._lock:
            return set(self._own[channel])

    def remember(self, channel: str, ids: Iterable[Any]) -> None:
        with self._lock:
            own = self._own[channel]
            own.update(ids)
            if len(own) > OWN_KEPT:
                own.difference_update(sorted(own)[: OWN_KEPT // 2])

    def _forget(self, channel: str, ids: Iterable[Any]) -> None:
        with self._lock:
            self._own[channel].difference_update(ids)

    def _written(self, db: Session, instance: object) -> None:
        for t in self.tracked:
            if isinstance(instance, t.table) and t.wanted(instance):
                db.info.setdefault(self._key, []).append((t, instance))
                return

    def _before_commit(self, db: Session) -> None:
        if db.get_nested_transaction() is not None:
            return  # a savepoint is released: wait for the transaction itself
        tables = tuple(t.table for t in self.tracked)
        if any(isinstance(row, tables) for row in db.new):
            db.flush()  # their ids (the commit would flush them only after this hook)
        written: list[tuple[Tracked, Any]] = db.info.pop(self._key, [])
        announced: list[tuple[str, list[Any]]] = []
        for t in self.tracked:
            # The identity, not row.id: a row a rolled-back savepoint expired is not reloaded.
            ids = sorted({_id(row) for tr, row in written if tr is t and inspect(row).persistent})
            if not ids:
                continue
            self.remember(t.channel, ids)  # before the signal can come back
            announced.append((t.channel, ids))
            self.announce(db, t.channel, ids, t.per_signal)
        db.info[self._key + ".announced"] = announced

    def announce(self, db: Session, channel: str, ids: list[Any], per_signal: int) -> None:
        """Announce ``ids`` on ``channel`` in ``db``'s transaction, ``per_signal`` per payload.
        A failure is counted and logged: the change itself must still commit."""
        try:
            for chunk in chunks(ids, per_signal):
                signals.announce(db, channel, json.dumps(chunk))
        except SQLAlchemyError as exc:
            self.failures += 1
            log.error("%s rows %s: no signal for other processes: %s", channel, ids, exc)

    def _after_commit(self, db: Session) -> None:
        if db.get_nested_transaction() is None:
            db.info.pop(self._key + ".announced", None)

    def _after_rollback(self, db: Session, previous: SessionTransaction) -> None:
        if previous.parent is not None:
            return  # a savepoint: its rows are not persistent any more, left out at commit
        db.info.pop(self._key, None)
        for channel, ids in db.info.pop(self._key + ".announced", []):
            self._forget(channel, ids)  # never committed: another writer may reuse the ids


def chunks(items: Sequence[_T], size: int) -> Iterator[list[_T]]:
    """``items`` in lists of ``size`` at most (one signal payload each)."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def unseen(
    db: Session,
    id_col: Any,
    key_col: Any,
    floor: int,
    mark: int,
    known: set[Any],
    *where: Any,
) -> list[Any]:
    """The keys of rows with ids in ``(max(floor, mark - LOOKBACK), mark]`` not in ``known``.

    On PostgreSQL an id is taken at insert and the row committed later, so a row can commit
    after one with a higher id. Its signal names it and is heard — unless no listener was
    connected then: a follower that reads "the rows after the last id seen" when it
    reconnects would skip it for good. So after a reconnect it also looks a little below
    (``floor``: the last id when it started, so nothing older is replayed) for rows it has
    neither published nor skipped (``known``). ``where``: further conditions on the rows."""
    low = max(floor, mark - LOOKBACK)
    if low >= mark:
        return []
    rows = db.execute(select(id_col, key_col).where(id_col > low, id_col <= mark, *where)).all()
    return [key for _, key in rows if key not in known]


def _id(row: object) -> Any:
    identity = inspect(row).identity
    assert identity is not None  # persistent
    return identity[0]


def ids_of(payload: str, kind: type[Any], channel: str) -> list[Any]:
    """The ids a signal names (``kind``: int or str); a bad payload is logged and names none."""
    try:
        ids = json.loads(payload)
    except ValueError:
        ids = None
    if not isinstance(ids, list) or not all(type(i) is kind for i in ids):
        log.warning("%s: signal with a bad payload ignored: %.200r", channel, payload)
        return []
    return ids

"""RowSignals: the ids of rows a transaction inserted, announced when (and only if) it commits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from cloud import signals
from cloud.alerts.tables import Notification
from cloud.db import create_schema, make_engine
from cloud.row_signals import RowSignals, Tracked, ids_of

CHANNEL = "linli_test_rows"


class Setup:
    def __init__(self, sessions: sessionmaker[Session], rows: RowSignals) -> None:
        self.sessions = sessions
        self.rows = rows
        self.heard: list[list[int]] = []

    def announced(self) -> list[int]:
        return [i for payload in self.heard for i in payload]


@pytest.fixture
def setup(db_url: str) -> Iterator[Setup]:
    engine = make_engine(db_url)
    create_schema(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    rows = RowSignals(
        [Tracked(Notification, CHANNEL, per_signal=2, wanted=lambda n: n.role != "quiet")],
        name="test",
    )
    rows.install(sessions)
    s = Setup(sessions, rows)
    stop = signals.subscribe(engine, CHANNEL, lambda p: s.heard.append(json.loads(p)))
    yield s
    stop()
    engine.dispose()


def _note(role: str = "manager") -> Notification:
    now = datetime.now(UTC)
    return Notification(ts=now, role=role, severity="major", title_en="t", title_zh="t", reason="x")


def test_committed_rows_are_announced_by_id_in_chunks_and_remembered(setup: Setup) -> None:
    with setup.sessions.begin() as db:
        notes = [_note() for _ in range(5)]
        db.add_all(notes)  # not flushed: the commit's own flush gives them ids
        db.add(_note("quiet"))  # not wanted
    ids = sorted(n.id for n in notes)
    assert [len(p) for p in setup.heard] == [2, 2, 1]
    assert setup.announced() == ids
    assert setup.rows.own(CHANNEL) == set(ids)


def test_a_rolled_back_savepoint_or_transaction_announces_nothing_of_it(setup: Setup) -> None:
    with setup.sessions() as db:
        kept = _note()
        db.add(kept)
        db.flush()
        with db.begin_nested() as savepoint:
            db.add(_note())
            db.flush()
            savepoint.rollback()
        db.commit()
    assert setup.announced() == [kept.id]
    with setup.sessions() as db:
        db.add(_note())
        db.flush()
        db.rollback()
    assert setup.announced() == [kept.id]
    assert setup.rows.own(CHANNEL) == {kept.id}


def test_a_commit_that_fails_after_announcing_forgets_its_ids(setup: Setup) -> None:
    class Refused(Exception):
        pass

    def refuse(db: Session) -> None:
        raise Refused

    event.listen(setup.sessions, "before_commit", refuse)  # after RowSignals' own hook
    try:
        with setup.sessions() as db:
            db.add(_note())
            with pytest.raises(Refused):
                db.commit()
            db.rollback()
    finally:
        event.remove(setup.sessions, "before_commit", refuse)
    assert setup.heard == []
    assert setup.rows.own(CHANNEL) == set()  # those ids may be another writer's next


def test_a_bad_payload_names_no_ids() -> None:
    assert ids_of("[1, 2]", int, CHANNEL) == [1, 2]
    assert ids_of('["a"]', str, CHANNEL) == ["a"]
    assert ids_of("[1, 2]", str, CHANNEL) == []
    assert ids_of("not json", int, CHANNEL) == []
    assert ids_of('{"a": 1}', int, CHANNEL) == []

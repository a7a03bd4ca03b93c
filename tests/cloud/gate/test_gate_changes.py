"""``cloud.gate.changes``: a write wakes the gate syncs of its own database, after it commits."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.gate import changes


def test_announce_wakes_subscribers_of_the_same_database_after_commit(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    writer = make_engine(f"sqlite:///{path}")
    # Another engine on the same file, spelled differently, as a separate CLI would have it.
    same = make_engine(f"sqlite:///{tmp_path}/./cloud.db")
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    woken: list[str | None] = []
    strangers: list[str | None] = []
    stop = changes.subscribe(same, woken.append)
    stop_other = changes.subscribe(other, strangers.append)
    try:
        with Session(writer) as db:
            db.execute(text("CREATE TABLE t (x INTEGER)"))
            changes.announce(db, "s1")
            changes.announce(db, None)
            assert woken == []  # not before the commit
            db.commit()
        assert sorted(woken, key=str) == [None, "s1"]
        with Session(writer) as db:
            changes.announce(db, "s2")
            db.rollback()
        with Session(writer) as db:
            db.execute(text("INSERT INTO t VALUES (1)"))
            db.commit()  # a commit that announced nothing
        assert sorted(woken, key=str) == [None, "s1"]
        assert strangers == []
    finally:
        stop()
        stop_other()
        for engine in (writer, same, other):
            engine.dispose()
    later = make_engine(f"sqlite:///{path}")
    with Session(later) as db:
        changes.announce(db, "s3")
        db.commit()
    later.dispose()
    assert "s3" not in woken  # unsubscribed

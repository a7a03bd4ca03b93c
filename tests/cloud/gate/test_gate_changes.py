"""``cloud.gate.changes``: a write wakes the gate syncs of its own database, after it commits."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from cloud.db import create_schema, make_engine
from cloud.gate import changes
from cloud.ingest.models import StoredMessage
from edge.testing import until
from protocols.codec import new_id
from protocols.messages import AccessDecision, AccessEvent, AccessKind, AccessMethod
from protocols.topics import Channel, parse_topic, topic


def test_announce_wakes_subscribers_of_the_same_database_after_commit(tmp_path: Path) -> None:
    path = tmp_path / "cloud.db"
    writer = make_engine(f"sqlite:///{path}")
    # Another engine on the same file, spelled differently, as a separate CLI would have it.
    same = make_engine(f"sqlite:///{tmp_path}/./cloud.db")
    other = make_engine(f"sqlite:///{tmp_path / 'other.db'}")
    create_schema(writer)  # on SQLite a change bumps a counter (cloud.signals)
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


def access(decision: AccessDecision, reason: str) -> AccessEvent:
    return AccessEvent(
        msg_id=new_id(),
        boot_id=new_id(),
        seq=0,
        ts=datetime.now(UTC),
        door="main",
        kind=AccessKind.DECISION,
        decision=decision,
        reason=reason,
        method=AccessMethod.QR,
        attrs={"pass_id": "vp1"},
    )


@pytest.mark.anyio
async def test_an_ingest_only_process_forwards_pass_grants_by_notify(pg_url: str) -> None:
    """On PostgreSQL the sync in another process hears of a stored pass grant (and not of a
    refusal or a redelivery)."""
    engine = make_engine(pg_url)
    woken: list[str | None] = []
    # The hook runs in this process here: hear this process's own signals too.
    listener = asyncio.create_task(changes.listen(engine, woken.append, ignore_own=False))
    try:
        await until(lambda: woken == [None], what="listening")  # it wakes once on connecting
        where = parse_topic(topic("s1", "gwa", Channel.ACCESS))
        batch = [
            StoredMessage(where, access(AccessDecision.DENIED, "pass_used_up")),
            StoredMessage(where, access(AccessDecision.GRANTED, "visitor_pass"), duplicate=True),
        ]
        hook = changes.stored_hook(engine)
        await hook(batch)
        await hook([StoredMessage(where, access(AccessDecision.GRANTED, "visitor_pass"))])
        await until(lambda: len(woken) == 2, what="notified")
        await asyncio.sleep(0.3)
        assert woken == [None, "s1"]
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        engine.dispose()

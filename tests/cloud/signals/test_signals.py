"""``cloud.signals``: a committed change reaches this process's subscribers at once and other
processes' listeners (a real second process), never a rolled-back one; a process does not
hear its own changes twice; an idle SQLite database costs one pragma per poll."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud import signals
from edge.testing import until
from tests.cloud.signals.conftest import run_elsewhere

CHANNEL = "linli_test"
WRITER = """
import sys
from sqlalchemy.orm import Session
from cloud import signals
from cloud.db import make_engine

engine = make_engine(sys.argv[1])
with Session(engine) as db:
    signals.announce(db, sys.argv[2], "rolled back")
    db.rollback()
with Session(engine) as db:
    for payload in sys.argv[3:]:
        signals.announce(db, sys.argv[2], payload)
    db.commit()
engine.dispose()
"""


def other_process(engine: Engine, channel: str, *payloads: str) -> None:
    """Announce ``payloads`` in one committed transaction of a separate Python process (after
    a rolled-back one)."""
    run_elsewhere(WRITER, engine, channel, *payloads)


def test_subscribers_hear_commits_of_their_database_only(engine: Engine) -> None:
    heard: list[str] = []
    other: list[str] = []
    stop = signals.subscribe(engine, CHANNEL, heard.append)
    stop_other = signals.subscribe(engine, "linli_other", other.append)
    try:
        with Session(engine) as db:
            signals.announce(db, CHANNEL, "a")
            signals.announce(db, CHANNEL, "b")
            assert heard == []  # not before the commit
            db.commit()
        assert heard == ["a", "b"]
        with Session(engine) as db:
            signals.announce(db, CHANNEL, "lost")
            db.rollback()
        with Session(engine) as db:
            db.execute(text("SELECT 1"))
            db.commit()  # announced nothing
        assert heard == ["a", "b"] and other == []
    finally:
        stop()
        stop_other()
    with Session(engine) as db:
        signals.announce(db, CHANNEL, "after")
        db.commit()
    assert heard == ["a", "b"]  # unsubscribed


def test_bad_channel_names_are_refused(engine: Engine) -> None:
    with Session(engine) as db, pytest.raises(ValueError, match="bad signal channel"):
        signals.announce(db, "linli; DROP TABLE users", "x")


@pytest.mark.anyio
async def test_another_process_is_heard_and_this_one_is_not(engine: Engine) -> None:
    heard: list[tuple[str, str | None]] = []

    def on_heard(channel: str, payload: str | None) -> None:
        heard.append((channel, payload))

    listener = asyncio.create_task(signals.listen(engine, [CHANNEL, "linli_other"], on_heard))
    try:
        # Listening: once per channel (something may have changed before it listened).
        await until(lambda: len(heard) == 2, what="listening")
        assert sorted(heard) == [("linli_other", None), (CHANNEL, None)]
        heard.clear()
        with Session(engine) as db:  # this process's change: its subscribers have it
            signals.announce(db, CHANNEL, "mine")
            db.commit()
        await asyncio.sleep(3 * signals.POLL_S)
        assert heard == []

        await asyncio.to_thread(other_process, engine, CHANNEL, "s1", "s2")
        sqlite = engine.dialect.name == "sqlite"
        expected = [(CHANNEL, None)] if sqlite else [(CHANNEL, "s1"), (CHANNEL, "s2")]
        await until(lambda: len(heard) >= len(expected), within=10, what="heard")
        await asyncio.sleep(3 * signals.POLL_S)
        assert heard == expected  # not the rolled-back one, not the other channel
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


@pytest.mark.anyio
async def test_own_and_foreign_changes_between_two_polls(engine: Engine) -> None:
    """A foreign change is heard even when this process changed the channel in the same poll
    interval; with ``ignore_own=False`` this process's changes are heard too."""
    heard: list[str | None] = []
    everything: list[str | None] = []
    listeners = [
        asyncio.create_task(signals.listen(engine, [CHANNEL], lambda c, p: heard.append(p))),
        asyncio.create_task(
            signals.listen(engine, [CHANNEL], lambda c, p: everything.append(p), ignore_own=False)
        ),
    ]
    try:
        await until(lambda: heard == [None] and everything == [None], what="listening")
        heard.clear()
        everything.clear()
        with Session(engine) as db:
            signals.announce(db, CHANNEL, "mine")
            db.commit()
        await until(lambda: len(everything) == 1, within=10, what="own change, not ignored")
        await asyncio.to_thread(other_process, engine, CHANNEL, "theirs")
        with Session(engine) as db:
            signals.announce(db, CHANNEL, "mine again")
            db.commit()
        await until(lambda: len(heard) >= 1, within=10, what="foreign change")
        await asyncio.sleep(3 * signals.POLL_S)
        assert heard == [None if engine.dialect.name == "sqlite" else "theirs"]
    finally:
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)


@pytest.mark.anyio
async def test_a_rolled_back_savepoint_never_hides_a_foreign_change(engine: Engine) -> None:
    """SQLite: the counter value a rolled-back savepoint produced may be committed by another
    process next; this process must not take it for its own."""
    heard: list[str | None] = []
    listener = asyncio.create_task(signals.listen(engine, [CHANNEL], lambda c, p: heard.append(p)))
    try:
        await until(lambda: heard == [None], what="listening")
        heard.clear()
        with Session(engine) as db:
            savepoint = db.begin_nested()
            signals.announce(db, CHANNEL, "undone")
            savepoint.rollback()
            db.commit()
        await asyncio.to_thread(other_process, engine, CHANNEL, "theirs")
        await until(lambda: len(heard) >= 1, within=10, what="foreign change")
        assert heard[-1] == (None if engine.dialect.name == "sqlite" else "theirs")
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)


def test_an_idle_sqlite_poll_is_one_pragma(tmp_path: Any) -> None:
    from cloud.db import create_schema, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'idle.db'}")
    create_schema(engine)
    poller = signals._Poller(engine, [CHANNEL], ignore_own=True)
    statements: list[str] = []
    event.listen(
        poller.conn, "before_cursor_execute", lambda *a: statements.append(a[2].split()[0])
    )
    try:
        poller.start()
        statements.clear()
        assert [poller.changed() for _ in range(5)] == [[]] * 5
        assert statements == ["PRAGMA"] * 5
        with Session(engine) as db:  # another connection writes (not this channel)
            db.execute(text("CREATE TABLE t (x INTEGER)"))
            db.commit()
        statements.clear()
        assert poller.changed() == []
        assert statements == ["PRAGMA", "SELECT"]  # looked at the counters once
    finally:
        poller.close()
        engine.dispose()

"""SQLite WAL checkpoints run beside the batch writer, not inside its commits."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from pathlib import Path

from cloud.db import SQLITE_AUTOCHECKPOINT_PAGES, create_schema, make_engine
from cloud.ingest.store import BatchWriter
from cloud.registry import Registry
from cloud.storage.bulk import WalCheckpointer
from tests.cloud.storage.storage_support import Gateway


def _readings_in_main_file(db: Path, tmp_path: Path) -> int:
    """Readings in the database file alone, as if its WAL were lost: checkpointed ones only."""
    alone = tmp_path / "alone.sqlite"
    shutil.copyfile(db, alone)
    conn = sqlite3.connect(alone)
    try:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        if "readings" not in tables:
            return 0
        return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    finally:
        conn.close()


def test_a_commit_is_followed_by_a_checkpoint_off_the_writer(tmp_path: Path) -> None:
    db = tmp_path / "ingest.sqlite"
    engine = make_engine(f"sqlite:///{db}")
    try:
        create_schema(engine)
        with engine.connect() as conn:  # the commit path's own threshold is only a safety net
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one()
        assert pages == SQLITE_AUTOCHECKPOINT_PAGES
        writer = BatchWriter(engine, Registry(engine))
        gw = Gateway("s1")
        result = writer.write(
            gw.deliver(*(gw.telemetry(seq, {"d1": seq, "d2": -seq}) for seq in range(50)))
        )
        assert result.readings == 100
        writer.checkpointer.wait(30)
        assert writer.checkpointer.runs == 1
        assert _readings_in_main_file(db, tmp_path) == 100
    finally:
        engine.dispose()


def test_no_checkpoint_thread_for_an_in_memory_database() -> None:
    engine = make_engine("sqlite://")
    try:
        checkpointer = WalCheckpointer(engine)
        checkpointer.poke()
        checkpointer.wait(5)
        assert checkpointer.runs == 0
        assert not any(t.name == "wal-checkpoint" for t in threading.enumerate())
    finally:
        engine.dispose()

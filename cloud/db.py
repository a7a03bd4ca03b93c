"""The one SQLAlchemy declarative base and engine factory for every cloud table.

Every table module defines its classes on :class:`Base`; :func:`create_schema` builds them.
SQLite (WAL) is the default store; PostgreSQL is the production one.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine, create_engine
from sqlalchemy.orm import DeclarativeBase

SQLITE_AUTOCHECKPOINT_PAGES = 10_000
"""SQLite's own checkpoint threshold (default 1000 pages): a safety net only. Writers that
commit often run checkpoints off their commit path (``cloud.storage.bulk.WalCheckpointer``);
any other connection still checkpoints once the WAL reaches ~40 MB."""

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine with the pragmas Linli relies on (SQLite: WAL, foreign keys, busy timeout)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute(f"PRAGMA wal_autocheckpoint={SQLITE_AUTOCHECKPOINT_PAGES}")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def create_schema(engine: Engine) -> None:
    """Bring the database to the current schema: ``alembic upgrade head`` (cloud/migrations).

    Imports every table module so their classes are registered on :data:`Base.metadata`.
    """
    from cloud.migrations import migrate

    migrate(engine)

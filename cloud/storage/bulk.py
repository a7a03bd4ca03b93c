"""The fastest portable bulk insert for the hot tables: COPY on PostgreSQL, one
``executemany`` of a plain prepared statement on SQLite — bypassing per-row ORM and type
processing, so callers pass values already in database form (see :func:`db_time`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session


def db_time(dialect: str, value: datetime) -> Any:
    """An aware datetime as the driver wants it for a UTC datetime column."""
    utc = value.astimezone(UTC)
    if dialect == "sqlite":  # same text as SQLAlchemy's SQLite DateTime, without strftime's cost
        return utc.replace(tzinfo=None).isoformat(" ", "microseconds")
    return utc


class TimeCache:
    """Converts each distinct datetime once per batch (readings of a message share theirs)."""

    def __init__(self, dialect: str) -> None:
        self.dialect = dialect
        self._seen: dict[datetime, Any] = {}

    def __call__(self, value: datetime) -> Any:
        got = self._seen.get(value)
        if got is None:
            got = self._seen[value] = db_time(self.dialect, value)
        return got


def allocate_ids(session: Session, model: type[DeclarativeBase], n: int) -> list[int]:
    """``n`` fresh primary keys for ``model`` to insert explicitly in this transaction.

    PostgreSQL takes them from the column's sequence (COPY cannot return ids). SQLite counts up
    from the highest id: the caller must hold the write lock (see ``store._write_lock``), so no
    other writer can take the same ones before this transaction commits.
    """
    if n <= 0:
        return []
    table = cast(Table, model.__table__)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        got = conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence(%(t)s, 'id')) FROM generate_series(1, %(n)s)",
            {"t": table.name, "n": n},
        )
        return [row[0] for row in got]
    top = conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) FROM {table.name}").scalar_one()
    return list(range(top + 1, top + 1 + n))


def bulk_insert(
    session: Session,
    model: type[DeclarativeBase],
    columns: Sequence[str],
    rows: Sequence[tuple[Any, ...]],
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) in the session's transaction."""
    if not rows:
        return
    table = cast(Table, model.__table__)
    for name in columns:  # names come from our own metadata; check anyway
        table.c[name]
    conn = session.connection()
    names = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        raw = conn.connection.driver_connection
        assert raw is not None
        sql = f"COPY {table.name} ({names}) FROM STDIN"
        dbapi_error = conn.dialect.loaded_dbapi.Error
        try:
            with raw.cursor() as cur, cur.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as exc:  # raw driver call: wrap as SQLAlchemy does for its own
            raise DBAPIError.instance(sql, None, exc, dbapi_error) from exc
        return
    marks = ", ".join("?" for _ in columns)
    conn.exec_driver_sql(
        f"INSERT INTO {table.name} ({names}) VALUES ({marks})",
        list(rows),
    )

"""Column types shared by the cloud tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC and read back aware (UTC) on SQLite and PostgreSQL.

    SQLite has no time-zone type: naive values would silently lose their offset.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Linli stores aware datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def to_micros(value: datetime) -> int:
    """An aware datetime as integer microseconds since the Unix epoch (exact)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Linli stores aware datetimes only")
    return (value - EPOCH) // _MICROSECOND


def from_micros(value: int) -> datetime:
    """Integer microseconds since the Unix epoch as an aware UTC datetime (exact)."""
    return EPOCH + timedelta(microseconds=value)


class EpochMicros(TypeDecorator[datetime]):
    """An aware datetime stored as a BIGINT of microseconds since the Unix epoch (UTC).

    For the readings hot store: 8 bytes instead of SQLite's 26-character text, in the row and
    in its (series, ts) index, and no text formatting per row on insert. Compared and ordered
    like the datetimes; bind aware datetimes, read aware UTC datetimes back. SQL that needs
    seconds divides by 1,000,000 (see ``cloud.storage.queries``).
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> int | None:
        return None if value is None else to_micros(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else from_micros(int(value))

"""storage: readings keyed by a series id, time as integer microseconds, message row id

Creates ``series`` from the distinct (site, device, metric, gateway) of the existing readings,
fills ``readings.series``, ``readings.message`` (the ``ingest_messages.id`` of the reading's
msg_id; NULL where retention already forgot that message) and the time as microseconds since
the Unix epoch, then swaps the (site, device, metric, ts) index for (series, ts) and drops the
columns the series and the message row now hold. SQLite: batch mode (the table is rebuilt once).

Revision ID: d4f1a8c3b2e6
Revises: 4be828933d8d
Create Date: 2026-11-28 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d4f1a8c3b2e6"
down_revision: str | Sequence[str] | None = "4be828933d8d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Id = sa.String(length=64)

_SERIES_OF_ROW = (
    "(SELECT s.id FROM series s WHERE s.site = readings.site AND s.device = readings.device"
    " AND s.metric = readings.metric AND s.gateway = readings.gateway)"
)
_MESSAGE_OF_ROW = "(SELECT m.id FROM ingest_messages m WHERE m.msg_id = readings.msg_id)"


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.create_table(
        "series",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("site", Id, nullable=False),
        sa.Column("device", Id, nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("gateway", Id, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_series")),
        sa.UniqueConstraint("site", "device", "metric", "gateway", name="uq_series_key"),
    )
    op.execute(
        "INSERT INTO series (site, device, metric, gateway)"
        " SELECT DISTINCT site, device, metric, gateway FROM readings"
        " ORDER BY site, device, metric, gateway"
    )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("series", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("message", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("ts_us", sa.BigInteger(), nullable=True))
    if _sqlite():  # text 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC, always six digits)
        micros = (
            "CAST(strftime('%s', ts) AS INTEGER) * 1000000 + CAST(substr(ts, 21, 6) AS INTEGER)"
        )
    else:  # timestamptz; extract returns an exact numeric
        micros = "(extract(epoch FROM ts) * 1000000)::bigint"
    op.execute(
        f"UPDATE readings SET series = {_SERIES_OF_ROW}, message = {_MESSAGE_OF_ROW},"
        f" ts_us = {micros}"
    )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_index("ix_readings_series")
        for name in ("site", "gateway", "device", "metric", "msg_id", "ts"):
            batch_op.drop_column(name)
        batch_op.alter_column("series", existing_type=sa.BigInteger(), nullable=False)
        batch_op.alter_column(
            "ts_us", new_column_name="ts", existing_type=sa.BigInteger(), nullable=False
        )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.create_index("ix_readings_series_ts", ["series", "ts"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("readings", schema=None) as batch_op:
        for name in ("site", "gateway", "device", "msg_id"):
            batch_op.add_column(sa.Column(name, Id, nullable=True))
        batch_op.add_column(sa.Column("metric", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("ts_dt", sa.DateTime(timezone=True), nullable=True))
    if _sqlite():
        stamp = (
            "strftime('%Y-%m-%d %H:%M:%S', ts / 1000000, 'unixepoch')"
            " || '.' || printf('%06d', ts % 1000000)"
        )
    else:
        stamp = "to_timestamp(0) + ts * interval '1 microsecond'"
    columns = ("site", "gateway", "device", "metric")
    sets = ", ".join(
        f"{c} = (SELECT s.{c} FROM series s WHERE s.id = readings.series)" for c in columns
    )
    op.execute(
        f"UPDATE readings SET {sets}, ts_dt = {stamp}, msg_id = coalesce("
        "(SELECT m.msg_id FROM ingest_messages m WHERE m.id = readings.message), '')"
    )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.drop_index("ix_readings_series_ts")
        batch_op.drop_column("series")
        batch_op.drop_column("message")
        batch_op.drop_column("ts")
        for name in ("site", "gateway", "device", "metric", "msg_id"):
            batch_op.alter_column(name, existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column(
            "ts_dt",
            new_column_name="ts",
            existing_type=sa.DateTime(timezone=True),
            nullable=False,
        )
    with op.batch_alter_table("readings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_readings_series", ["site", "device", "metric", "ts"], unique=False
        )
    op.drop_table("series")

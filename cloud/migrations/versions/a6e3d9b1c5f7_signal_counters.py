"""signals: signal_counters (SQLite's cross-process change signals, cloud/signals.py)

Revision ID: a6e3d9b1c5f7
Revises: 4be828933d8d
Create Date: 2026-11-28 03:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a6e3d9b1c5f7"
down_revision: str | Sequence[str] | None = "4be828933d8d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "signal_counters",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("counter", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("channel", name=op.f("pk_signal_counters")),
    )


def downgrade() -> None:
    op.drop_table("signal_counters")

"""notifications: a username for notices addressed to one person (drill participants)

Revision ID: e5b8c2a17d34
Revises: 4be828933d8d
Create Date: 2026-11-27 22:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5b8c2a17d34"
down_revision: str | Sequence[str] | None = "4be828933d8d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("username", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("username")

"""rules: watermark and reading floor beside the saved rule state

Revision ID: c7e5a1d93f02
Revises: 4be828933d8d
Create Date: 2026-11-27 21:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c7e5a1d93f02"
down_revision: str | Sequence[str] | None = "4be828933d8d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("rule_state", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("watermark", sa.BigInteger(), server_default="-1", nullable=False)
        )
        batch_op.add_column(
            sa.Column("reading_floor", sa.BigInteger(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("rule_state", schema=None) as batch_op:
        batch_op.drop_column("reading_floor")
        batch_op.drop_column("watermark")

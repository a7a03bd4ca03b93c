"""gate: visitor_pass_uses (each use of a visitor pass, idempotent by the event's msg_id)

Revision ID: f2a9c4e7d1b3
Revises: 4be828933d8d
Create Date: 2026-11-28 00:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f2a9c4e7d1b3"
down_revision: str | Sequence[str] | None = "4be828933d8d"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visitor_pass_uses",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("pass_id", sa.Integer(), nullable=False),
        sa.Column("msg_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("gateway", sa.String(length=64), nullable=False),
        sa.Column("door", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pass_id"],
            ["visitor_passes.id"],
            name=op.f("fk_visitor_pass_uses_pass_id_visitor_passes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_visitor_pass_uses")),
        sa.UniqueConstraint("msg_id", name=op.f("uq_visitor_pass_uses_msg_id")),
    )
    with op.batch_alter_table("visitor_pass_uses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_visitor_pass_uses_event_id"), ["event_id"])
        batch_op.create_index(batch_op.f("ix_visitor_pass_uses_pass_id"), ["pass_id"])


def downgrade() -> None:
    with op.batch_alter_table("visitor_pass_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_visitor_pass_uses_pass_id"))
        batch_op.drop_index(batch_op.f("ix_visitor_pass_uses_event_id"))
    op.drop_table("visitor_pass_uses")

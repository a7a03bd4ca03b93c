"""Alembic environment: Linli's one metadata (every table module imported via cloud.tables)."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.types import TypeDecorator

import cloud.tables  # noqa: F401  (registers every table module)
from cloud.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def render_item(kind: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render a column type decorator (e.g. a UTC datetime) as the plain SQLAlchemy type it
    stores, so that migrations never import application modules."""
    if kind == "type" and isinstance(obj, TypeDecorator):
        impl = obj.impl_instance
        if type(impl).__module__.startswith("sqlalchemy.") and hasattr(sa, type(impl).__name__):
            return f"sa.{impl!r}"
    return False


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER via table copy
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine: Engine | None = config.attributes.get("engine")
    if engine is None:
        url = config.get_main_option("sqlalchemy.url")
        if not url:
            raise SystemExit("no database: pass --db URL or set LINLI_DB_URL")
        engine = make_engine(url)
    with engine.begin() as connection:
        _run(connection)


if context.is_offline_mode():
    run_offline()
else:
    run_online()

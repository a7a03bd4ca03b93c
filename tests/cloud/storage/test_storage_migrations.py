"""Alembic: ``upgrade head`` on an empty database matches the metadata of every table module."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

import cloud.tables  # noqa: F401  (registers every table module)
from cloud.db import Base, create_schema, make_engine
from cloud.migrations import alembic_config, has_revisions, upgrade


def diff(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "render_as_batch": conn.dialect.name == "sqlite"}
        )
        return list(compare_metadata(ctx, Base.metadata))


def test_upgrade_head_leaves_no_difference(db_url: str) -> None:
    if not has_revisions():
        pytest.fail("cloud/migrations/versions has no revision yet")
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert diff(engine) == []
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        assert "alembic_version" in tables
    finally:
        engine.dispose()


def test_create_schema_is_idempotent(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        create_schema(engine)
        create_schema(engine)
        assert diff(engine) == []
    finally:
        engine.dispose()


def test_database_built_by_create_all_is_stamped_at_head(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        Base.metadata.create_all(engine)  # as create_schema did before migrations existed
        create_schema(engine)
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
        assert current == set(ScriptDirectory.from_config(alembic_config()).get_heads())
        assert diff(engine) == []
    finally:
        engine.dispose()

"""Fixtures for storage tests: a migrated database and a batch writer (no broker needed)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from cloud.db import create_schema, make_engine
from cloud.ingest.store import BatchWriter
from cloud.registry import Registry


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def writer(engine: Engine) -> BatchWriter:
    return BatchWriter(engine, Registry(engine))

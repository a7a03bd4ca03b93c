"""Fixtures for storage tests: a migrated database and a batch writer (no broker needed)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from cloud.ingest.store import BatchWriter
from cloud.registry import Registry


@pytest.fixture
def writer(engine: Engine) -> BatchWriter:
    return BatchWriter(engine, Registry(engine))

"""Fixtures shared by the cloud's test areas."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from cloud.db import create_schema, make_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database of the test's own, on SQLite and on PostgreSQL (``db_url``).
    (tests/cloud/faces overrides the name with its face engine.)"""
    eng = make_engine(db_url)
    create_schema(eng)
    yield eng
    eng.dispose()

"""A fresh schema per test on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.db import create_schema, make_engine


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    create_schema(engine)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()

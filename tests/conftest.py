"""Fixtures for real services. Every test that needs a broker or a database gets a real one.

Services start once per session on free loopback ports (``make test`` installs them); tests are
isolated by a fresh site id (topic prefix) or a fresh database each.
"""

from __future__ import annotations

import itertools
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from cloud.db import create_schema, make_engine
from linli.services import Mosquitto, Postgres, ServiceUnavailable, VictoriaMetrics

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("LINLI_SHARED_DATA", REPO.parent / "shared" / "data"))
CHROMIUM = os.environ.get("LINLI_CHROMIUM", "/usr/bin/chromium")
_db_counter = itertools.count()


SCREEN_WAIT_MS = 15_000
"""How long a Playwright ``expect`` waits for a screen to show what it must (default 5 s). A
correct screen gets there at once; the margin is for three test workers sharing two cores with
Chromium, uvicorn and the databases, where a live refresh can take seconds. A screen that never
gets there still fails."""


def pytest_configure(config: pytest.Config) -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=SCREEN_WAIT_MS)


def _require(exc: ServiceUnavailable) -> None:
    # Under CI (and make test, which installs them) a missing server is a failure, never a skip.
    pytest.fail(f"{exc}. Run 'make test', which installs the test services.", pytrace=False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    """One broker for the session; isolate tests with the ``site`` fixture."""
    try:
        broker = Mosquitto()
    except ServiceUnavailable as exc:
        _require(exc)
        raise
    with broker:
        yield broker


@pytest.fixture
def own_mosquitto() -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that stop, restart or kill it."""
    try:
        broker = Mosquitto()
    except ServiceUnavailable as exc:
        _require(exc)
        raise
    with broker:
        yield broker


@pytest.fixture
def site() -> str:
    """A fresh site id: the topic prefix that keeps this test's traffic its own."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    try:
        server = Postgres()
    except ServiceUnavailable as exc:
        _require(exc)
        raise
    with server:
        yield server


@pytest.fixture
def pg_url(postgres: Postgres) -> str:
    """A new, empty PostgreSQL database for this test."""
    return postgres.create_database(f"linli_test_{os.getpid()}_{next(_db_counter)}")


@pytest.fixture
def pg_engine(pg_url: str) -> Iterator[Engine]:
    """A migrated PostgreSQL database of the test's own (``pg_url``)."""
    eng = make_engine(pg_url)
    create_schema(eng)
    yield eng
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Runs the test once on SQLite (file, WAL) and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'linli.db'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database(f"linli_test_{os.getpid()}_{next(_db_counter)}")


@pytest.fixture(scope="session")
def victoria() -> Iterator[VictoriaMetrics]:
    try:
        server = VictoriaMetrics()
    except ServiceUnavailable as exc:
        _require(exc)
        raise
    with server:
        yield server


@pytest.fixture(scope="session")
def chromium() -> str:
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing; 'make test' installs Debian's chromium", pytrace=False)
    return CHROMIUM


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(
            f"sample data not found at {SHARED_DATA} (set LINLI_SHARED_DATA)", pytrace=False
        )
    return SHARED_DATA

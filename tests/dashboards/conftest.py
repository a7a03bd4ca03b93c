"""Fixtures for the screens: a small app (accounts + dashboards), a live server, Chromium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import dashboards
from cloud.api import create_app
from cloud.auth import service
from cloud.auth.deps import Role
from cloud.auth.router import router as auth_router
from cloud.db import create_schema, make_engine
from cloud.settings import Settings
from linli.services import Mosquitto
from tests.dashboards.screens_support import CHROMIUM_ARGS, PASSWORD, Cloud, LiveServer, Pages


def add_users(engine: Engine) -> None:
    with Session(engine) as db:
        for role in Role:
            service.create_user(db, f"{role.value}1", PASSWORD, role, display_name=role.title())
        db.commit()


@pytest.fixture
def small_db_url(tmp_path: Path) -> str:
    """The small app's database: SQLite; a test module may override it (e.g. with db_url)."""
    return f"sqlite:///{tmp_path / 'dash.db'}"


@pytest.fixture
def small_app(small_db_url: str) -> Iterator[FastAPI]:
    """Accounts + the dashboards' pages and APIs, with one user per role."""
    app = FastAPI()
    engine = make_engine(small_db_url)
    create_schema(engine)
    add_users(engine)
    app.state.engine = engine
    app.include_router(auth_router)
    dashboards.mount(app)
    yield app
    console = getattr(app.state, "dev_console", None)
    if console is not None:
        console.close()
    engine.dispose()


def cloud_settings(tmp_path: Path, broker: Mosquitto, site: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "db_url": f"sqlite:///{tmp_path / 'cloud.db'}",
        "mqtt_enabled": True,
        "mqtt_port": broker.port,
        "mqtt_client_id": f"cloud-{site}",
        "tick_s": 0.5,
        "stale_after_s": 3600.0,
    }
    values |= overrides
    return Settings(**values)


@pytest.fixture
def cloud(tmp_path: Path, mosquitto: Mosquitto, site: str) -> Iterator[Cloud]:
    app = create_app(cloud_settings(tmp_path, mosquitto, site))
    with TestClient(app) as client:
        made = Cloud(app, client)
        made.wait_for(lambda: client.get("/ready").status_code == 200)
        yield made
        console = getattr(app.state, "dev_console", None)
        if console is not None:
            console.close()


@pytest.fixture
def client(small_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(small_app) as client:
        yield client


def _login(client: TestClient, username: str) -> None:
    response = client.post("/api/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text


@pytest.fixture
def login() -> Callable[[TestClient, str], None]:
    """Sign ``client`` in as ``username`` (the client keeps the session cookie)."""
    return _login


@pytest.fixture
def live_small(small_app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(small_app) as server:
        yield server


# Module scope, not session: while Playwright's sync API is open it holds an asyncio loop as
# the main thread's running loop, which breaks every asyncio test that runs after it.
@pytest.fixture(scope="module")
def browser(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, timeout=60_000)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with Pages(browser, timeout_ms=20_000) as pages:
        yield pages.new(locale="zh-CN")


@pytest.fixture
def pages(browser: Browser) -> Iterator[Pages]:
    """Opens browser pages for a test (``pages.new(...)``, each in its own context); at the end
    closes them and fails the test if any page raised a JavaScript error."""
    with Pages(browser) as made:
        yield made

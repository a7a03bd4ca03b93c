"""A small app of the accounts area alone: its router plus two role-checked probe routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cloud.auth import service
from cloud.auth.deps import Principal, Role, require_roles
from cloud.auth.models import AuthSettings
from cloud.auth.router import router
from cloud.db import create_schema, make_engine

PASSWORD = "correct horse battery"


def make_app(db_url: str, settings: AuthSettings | None = None) -> FastAPI:
    app = FastAPI()
    engine = make_engine(db_url)
    create_schema(engine)
    app.state.engine = engine
    app.state.auth_settings = settings or AuthSettings()
    app.include_router(router)

    @app.post("/probe/door")
    def open_door(who: Annotated[Principal, Depends(require_roles(Role.GUARD))]) -> str:
        return who.username

    @app.websocket("/probe/ws")
    async def ws(
        websocket: WebSocket, who: Annotated[Principal, Depends(require_roles(Role.GUARD))]
    ) -> None:
        await websocket.accept()
        await websocket.send_json({"user": who.username})
        await websocket.close()

    @app.get("/probe/any")
    def any_user(who: Annotated[Principal, Depends(require_roles())]) -> str:
        return who.role.value

    return app


def add_users(app: FastAPI) -> None:
    with Session(app.state.engine) as db:
        for role in Role:
            service.create_user(db, f"{role.value}1", PASSWORD, role, display_name=role.title())
        db.commit()


@pytest.fixture
def app(db_url: str) -> Iterator[FastAPI]:
    app = make_app(db_url)
    add_users(app)
    yield app
    app.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


def _login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    response = client.post("/api/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


@pytest.fixture
def login() -> Callable[..., str]:
    """Sign in through the API (the client keeps the cookie); returns the bearer token."""
    return _login


@pytest.fixture
def fresh_app(tmp_path: Path) -> Iterator[Callable[..., FastAPI]]:
    """Build another app with its own SQLite file and settings; disposed after the test."""
    made: list[FastAPI] = []

    def build(settings: AuthSettings | None = None, *, users: bool = True) -> FastAPI:
        app = make_app(f"sqlite:///{tmp_path / f'app{len(made)}.db'}", settings)
        if users:
            add_users(app)
        made.append(app)
        return app

    yield build
    for app in made:
        app.state.engine.dispose()

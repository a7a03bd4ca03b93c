"""Schemathesis against the cloud's OpenAPI spec, authenticated as an admin: no 500s.

The app is the real ``cloud.api.app.create_app`` on SQLite with MQTT off, called in-process
through its ASGI interface. Every operation gets a handful of generated requests (bounded:
:data:`EXAMPLES` each), all carrying the admin's bearer token so the fuzzing reaches the
handlers instead of stopping at 401. ``/api/auth/logout`` is left out: it would end the very
session the rest of the run uses (it is covered by tests/cloud/auth).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.core.result import Err
from schemathesis.python import asgi
from schemathesis.schemas import APIOperation, BaseSchema
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.auth.service import create_admin
from cloud.settings import Settings

EXAMPLES = int(os.environ.get("LINLI_FUZZ_EXAMPLES", "12"))
"""Generated requests per operation (each mode); raise it for a deeper run."""
ADMIN = "fuzz-admin"
PASSWORD = "fuzzing is not a password"
SKIP = {"/api/auth/logout"}  # would end the session the rest of the run uses


@pytest.fixture(scope="module")
def cloud_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    db: Path = tmp_path_factory.mktemp("api-fuzz") / "linli.db"
    app = create_app(
        Settings(
            db_url=f"sqlite:///{db}",
            mqtt_enabled=False,
            static_dashboards=False,
            rules_enabled=False,
        )
    )
    yield app
    asgi.shutdown_lifespans()  # schemathesis started the app's lifespan; end it here


@pytest.fixture(scope="module")
def api_schema(cloud_app: FastAPI) -> BaseSchema:
    # Loading over ASGI starts the app's lifespan (database, services) for the whole module.
    return schemathesis.openapi.from_asgi("/openapi.json", cloud_app)


@pytest.fixture(scope="module")
def admin_token(cloud_app: FastAPI, api_schema: BaseSchema) -> str:
    with Session(cloud_app.state.engine) as db:
        create_admin(db, ADMIN, PASSWORD)
        db.commit()
    with asgi.get_client(cloud_app) as client:  # type: ignore[arg-type]
        response = client.post("/api/auth/login", json={"username": ADMIN, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token: str = response.json()["token"]
    return token


def operations(schema: BaseSchema) -> list[APIOperation[Any, Any, Any, Any]]:
    found = []
    for result in schema.get_all_operations():
        if isinstance(result, Err):  # an operation the spec describes wrongly
            raise AssertionError(f"invalid operation in the OpenAPI spec: {result.err()}")
        if result.ok().path not in SKIP:
            found.append(result.ok())
    return found


def test_no_server_errors(api_schema: BaseSchema, admin_token: str) -> None:
    """Valid and invalid requests (schemathesis' positive and negative modes) per operation."""
    auth = {"Authorization": f"Bearer {admin_token}"}
    ops = operations(api_schema)
    assert len(ops) >= 40, "the spec lost its operations"
    failures: list[str] = []
    calls = 0
    for operation in ops:
        strategy = operation.as_strategy(GenerationMode.POSITIVE) | operation.as_strategy(
            GenerationMode.NEGATIVE
        )

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def call(case: Case[Any]) -> None:
            nonlocal calls
            calls += 1
            try:
                response = case.call(headers=auth)
            except Exception as exc:  # raised through ASGI: a real server would answer 500
                raise AssertionError(
                    f"500 ({type(exc).__name__}: {exc}): {case.as_curl_command()}"
                ) from exc
            assert response.status_code < 500, (
                f"{response.status_code}: {case.as_curl_command()}\n{response.text[:500]}"
            )
            # The token must stay valid, or every later operation would only see 401.
            assert response.status_code != 401 or case.path == "/api/auth/login", response.text

        try:
            call()
        except AssertionError as exc:
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert calls >= len(ops) * 2
    assert not failures, "\n\n".join(failures)


HUGE = 2**63  # one past the largest BIGINT


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", f"/api/alerts/{HUGE - 1}"),  # control: the largest BIGINT is a plain 404
        ("GET", f"/api/alerts/{HUGE}"),
        ("GET", f"/api/alerts/{HUGE}/timeline"),
        ("POST", f"/api/alerts/{HUGE}/ack"),
        ("GET", f"/api/alerts?offset={HUGE}"),
        ("GET", f"/api/devices?offset={HUGE}"),
        ("GET", f"/api/commands?alert_id={HUGE}"),
        ("GET", f"/api/faces/gallery/{HUGE}"),
    ],
)
def test_integers_beyond_64_bits_are_client_errors(
    cloud_app: FastAPI, admin_token: str, method: str, url: str
) -> None:
    """What the schemathesis run keeps finding, pinned: an id or offset past BIGINT must be a
    4xx (validation), not an OverflowError from the database driver (a 500)."""
    with asgi.get_client(cloud_app) as client:  # type: ignore[arg-type]
        try:
            response = client.request(
                method, url, headers={"Authorization": f"Bearer {admin_token}"}
            )
        except OverflowError as exc:
            pytest.fail(f"{method} {url}: 500 ({exc})")
    assert 400 <= response.status_code < 500, response.text


def test_an_unbounded_integer_reaching_the_database_is_a_client_error(tmp_path: Path) -> None:
    """The net under the routers' bounds: a route that forgot one still answers 422, not 500."""
    from fastapi import APIRouter
    from fastapi.testclient import TestClient
    from sqlalchemy import text

    from cloud.api.app import create_app
    from cloud.settings import Settings

    app = create_app(
        Settings(
            db_url=f"sqlite:///{tmp_path / 'o.db'}", mqtt_enabled=False, static_dashboards=False
        )
    )
    probe = APIRouter()

    @probe.get("/probe/{n}")
    def unbounded(n: int) -> dict[str, int]:
        with app.state.engine.connect() as conn:
            return {"n": conn.execute(text("SELECT :n"), {"n": n}).scalar_one()}

    app.include_router(probe)
    with TestClient(app) as client:
        assert client.get("/probe/5").json() == {"n": 5}
        response = client.get(f"/probe/{2**64}")
        assert response.status_code == 422
        assert response.json() == {"detail": "a value is out of range"}

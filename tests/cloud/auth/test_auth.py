"""Accounts: passwords, tokens (bearer and cookie), expiry, roles, rate limit, audit, CLI."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cloud.auth import service
from cloud.auth.audit import entries
from cloud.auth.models import AuthSettings
from cloud.auth.passwords import hash_password, verify_password
from cloud.auth.service import LoginLimiter, create_admin_cli
from cloud.auth.tables import LoginSession, User
from cloud.db import make_engine

PASSWORD = "correct horse battery"  # the password conftest gives every test user


def test_password_hash_is_argon2_and_verifies() -> None:
    hashed = hash_password("a long secret pw")
    assert hashed.startswith("$argon2id$")
    assert verify_password(hashed, "a long secret pw")
    assert not verify_password(hashed, "a long secret pX")
    assert not verify_password(None, "a long secret pw")
    assert not verify_password("not a hash", "x")


def test_login_sets_cookie_and_bearer_and_cookie_both_work(client: TestClient) -> None:
    response = client.post("/api/auth/login", json={"username": "guard1", "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["role"] == "guard"
    cookie = response.headers["set-cookie"]
    assert "linli_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    # The client now holds the cookie: a browser-style request works.
    assert client.get("/api/auth/me").json()["username"] == "guard1"
    # A bare bearer token works without the cookie.
    client.cookies.clear()
    assert client.get("/api/auth/me").status_code == 401
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.status_code == 200 and me.json()["role"] == "guard"


def test_wrong_password_and_unknown_user_are_401(client: TestClient) -> None:
    for username, password in [("guard1", "wrong password!"), ("nobody", PASSWORD)]:
        response = client.post("/api/auth/login", json={"username": username, "password": password})
        assert response.status_code == 401
        assert "set-cookie" not in response.headers


def test_logout_revokes_the_token(client: TestClient, login: Callable[..., str]) -> None:
    token = login(client, "manager1")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post("/api/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_expired_token_is_refused(client: TestClient, login: Callable[..., str]) -> None:
    token = login(client, "manager1")
    client.cookies.clear()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/auth/me", headers=headers).status_code == 200
    engine = client.app.state.engine  # type: ignore[attr-defined]
    with Session(engine) as db:
        db.execute(update(LoginSession).values(expires_at=datetime.now(UTC) - timedelta(1)))
        db.commit()
    assert client.get("/api/auth/me", headers=headers).status_code == 401


def test_session_ttl_is_applied(fresh_app: Callable[..., FastAPI]) -> None:
    app = fresh_app(AuthSettings(session_ttl_s=120))
    with TestClient(app) as client:
        before = datetime.now(UTC)
        response = client.post(
            "/api/auth/login", json={"username": "viewer1", "password": PASSWORD}
        )
        expires = datetime.fromisoformat(response.json()["expires_at"])
        assert timedelta(seconds=100) < expires - before < timedelta(seconds=140)
        assert "Max-Age=120" in response.headers["set-cookie"]


def test_inactive_user_cannot_use_a_token(client: TestClient, login: Callable[..., str]) -> None:
    token = login(client, "resident1")
    client.cookies.clear()
    with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
        db.execute(update(User).where(User.username == "resident1").values(active=False))
        db.commit()
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401


def test_roles_401_403_and_admin_passes(client: TestClient, login: Callable[..., str]) -> None:
    assert client.post("/probe/door").status_code == 401
    for username, expected in [
        ("guard1", 200),
        ("admin1", 200),
        ("manager1", 403),
        ("viewer1", 403),
        ("resident1", 403),
        ("responder1", 403),
    ]:
        client.cookies.clear()
        token = login(client, username)
        client.cookies.clear()
        response = client.post("/probe/door", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == expected, username
        anyone = client.get("/probe/any", headers={"Authorization": f"Bearer {token}"})
        assert anyone.json() == username.removesuffix("1")


def test_login_rate_limited_per_username_and_ip(
    fresh_app: Callable[..., FastAPI], login: Callable[..., str]
) -> None:
    settings = AuthSettings(login_max_failures=3, login_window_s=60)
    app = fresh_app(settings)
    with TestClient(app) as client:
        for _ in range(3):
            bad = client.post(
                "/api/auth/login", json={"username": "guard1", "password": "not it at all"}
            )
            assert bad.status_code == 401
        # Locked: even the right password is refused now, with a Retry-After.
        locked = client.post("/api/auth/login", json={"username": "guard1", "password": PASSWORD})
        assert locked.status_code == 429
        assert 0 < int(locked.headers["retry-after"]) <= 61
        # Another username from the same IP is not affected.
        assert login(client, "viewer1")


def test_limiter_unlocks_after_window_and_per_ip() -> None:
    limiter = LoginLimiter(max_failures=2, window_s=10)
    limiter.failed("Bob", "10.0.0.1", 100.0)
    assert limiter.retry_after("bob", "10.0.0.1", 100.5) is None
    limiter.failed("bob", "10.0.0.1", 101.0)
    wait = limiter.retry_after("bob", "10.0.0.1", 101.0)
    assert wait is not None and 8.9 < wait <= 9.0
    assert limiter.retry_after("bob", "10.0.0.2", 101.0) is None
    assert limiter.retry_after("bob", "10.0.0.1", 110.5) is None
    limiter.failed("bob", "10.0.0.1", 111.0)
    limiter.succeeded("bob", "10.0.0.1")
    limiter.failed("bob", "10.0.0.1", 111.5)
    assert limiter.retry_after("bob", "10.0.0.1", 111.5) is None


def test_limiter_memory_is_bounded() -> None:
    limiter = LoginLimiter(max_failures=1, window_s=60, max_keys=100)
    for i in range(1000):
        limiter.failed(f"user{i}", "1.2.3.4", 1.0)
    assert len(limiter._failures) == 100
    assert limiter.retry_after("user999", "1.2.3.4", 2.0) is not None


def test_admin_creates_user_and_changes_role_audited(
    client: TestClient, login: Callable[..., str]
) -> None:
    login(client, "admin1")
    created = client.post(
        "/api/users",
        json={"username": "lihua", "password": "zhe shi mima 123", "role": "guard"},
    )
    assert created.status_code == 201, created.text
    again = client.post(
        "/api/users",
        json={"username": "lihua", "password": "zhe shi mima 123", "role": "guard"},
    )
    assert again.status_code == 409
    weak = client.post("/api/users", json={"username": "wang", "password": "123", "role": "guard"})
    assert weak.status_code == 422
    changed = client.put("/api/users/lihua/role", json={"role": "manager"})
    assert changed.status_code == 200 and changed.json()["role"] == "manager"
    assert client.put("/api/users/nobody/role", json={"role": "manager"}).status_code == 404
    log = client.get("/api/audit", params={"target": "lihua"}).json()
    assert [(e["action"], e["actor"]) for e in log] == [
        ("user.role", "admin1"),
        ("user.create", "admin1"),
    ]
    assert log[0]["detail"] == {"from": "guard", "to": "manager"}


def test_last_admin_keeps_the_role(client: TestClient, login: Callable[..., str]) -> None:
    login(client, "admin1")
    response = client.put("/api/users/admin1/role", json={"role": "viewer"})
    assert response.status_code == 409
    assert client.get("/api/auth/me").json()["role"] == "admin"


def test_user_management_is_admin_only(client: TestClient, login: Callable[..., str]) -> None:
    login(client, "manager1")
    body = {"username": "x1", "password": "zhe shi mima 123", "role": "admin"}
    assert client.post("/api/users", json=body).status_code == 403
    assert client.put("/api/users/manager1/role", json={"role": "admin"}).status_code == 403
    assert client.get("/api/users").status_code == 403
    assert client.get("/api/audit").status_code == 200  # managers read the audit log
    client.cookies.clear()
    login(client, "guard1")
    assert client.get("/api/audit").status_code == 403


def test_create_admin_cli_generates_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert create_admin_cli(["root", "--db", url, "--generate"]) == 0
    out = capsys.readouterr().out
    password = out.split("password: ")[1].strip()
    assert len(password) >= 16
    engine = make_engine(url)
    with Session(engine) as db:
        user = db.scalar(select(User).where(User.username == "root"))
        assert user is not None and user.role == "admin"
        assert service.authenticate(db, "root", password) is not None
        assert [e.action for e in entries(db, target="root")] == ["user.create"]
    # The same name again is a clear error, not a crash.
    assert create_admin_cli(["--db", url, "--username", "root", "--generate"]) == 1
    assert "already exists" in capsys.readouterr().err
    engine.dispose()


def test_create_admin_cli_reads_stdin_and_refuses_weak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert create_admin_cli(["--db", url, "--username", "root", "--password-stdin"]) == 1
    assert "password refused" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("a much longer pass\n"))
    assert create_admin_cli(["--db", url, "--username", "root", "--password-stdin"]) == 0
    assert "password:" not in capsys.readouterr().out  # a chosen password is never echoed
    monkeypatch.delenv("LINLI_DB_URL", raising=False)
    monkeypatch.delenv("LINLI_DATABASE_URL", raising=False)
    assert create_admin_cli(["x"]) == 2
    with pytest.raises(SystemExit):
        create_admin_cli(["--generate", "--db", url])  # no user name: argparse refuses


def test_no_user_exists_until_created(fresh_app: Callable[..., FastAPI]) -> None:
    app = fresh_app(users=False)
    with TestClient(app) as client:
        for username in ["admin", "root", "linli"]:
            for password in ["admin", "password", "linli", "123456"]:
                response = client.post(
                    "/api/auth/login", json={"username": username, "password": password}
                )
                assert response.status_code in (401, 429)


def test_tokens_are_stored_hashed(client: TestClient, login: Callable[..., str]) -> None:
    token = login(client, "viewer1")
    with Session(client.app.state.engine) as db:  # type: ignore[attr-defined]
        stored = list(db.scalars(select(LoginSession.token_hash)))
    assert stored and token not in stored
    assert time.time() > 0


def test_linli_cloud_create_admin_reaches_the_accounts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The operator's command, end to end through ``linli``'s entry point."""
    from linli.cli import main

    url = f"sqlite:///{tmp_path / 'op.db'}"
    assert main(["cloud", "create-admin", "ops", "--db", url, "--generate"]) == 0
    password = capsys.readouterr().out.split("password: ")[1].strip()
    engine = make_engine(url)
    with Session(engine) as db:
        assert service.authenticate(db, "ops", password) is not None
        assert service.authenticate(db, "ops", "admin") is None
    engine.dispose()


def test_websocket_takes_cookie_bearer_or_query_token(
    client: TestClient, login: Callable[..., str]
) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/probe/ws"):
        pass
    assert refused.value.code == 1008
    token = login(client, "guard1")  # the client now holds the cookie
    with client.websocket_connect("/probe/ws") as ws:
        assert ws.receive_json() == {"user": "guard1"}
    client.cookies.clear()
    with client.websocket_connect(f"/probe/ws?token={token}") as ws:
        assert ws.receive_json() == {"user": "guard1"}
    with client.websocket_connect("/probe/ws", headers={"Authorization": f"Bearer {token}"}) as ws:
        assert ws.receive_json() == {"user": "guard1"}
    viewer = login(client, "viewer1")
    client.cookies.clear()
    with (
        pytest.raises(WebSocketDisconnect) as wrong_role,
        client.websocket_connect(f"/probe/ws?token={viewer}"),
    ):
        pass
    assert wrong_role.value.code == 1008


def test_change_own_password_ends_sessions_and_is_audited(
    client: TestClient, login: Callable[..., str]
) -> None:
    token = login(client, "guard1")
    other = login(client, "guard1")  # a second session (another device)
    headers = {"Authorization": f"Bearer {token}"}
    client.cookies.clear()
    wrong = client.post(
        "/api/auth/password",
        json={"current": "nope nope", "new": "brand new pw 1"},
        headers=headers,
    )
    assert wrong.status_code == 403
    weak = client.post(
        "/api/auth/password", json={"current": PASSWORD, "new": "short"}, headers=headers
    )
    assert weak.status_code == 422
    ok = client.post(
        "/api/auth/password", json={"current": PASSWORD, "new": "brand new pw 1"}, headers=headers
    )
    assert ok.status_code == 204
    assert (
        client.get("/api/auth/me", headers={"Authorization": f"Bearer {other}"}).status_code == 401
    )
    bad = client.post("/api/auth/login", json={"username": "guard1", "password": PASSWORD})
    assert bad.status_code == 401
    login(client, "guard1", "brand new pw 1")
    client.cookies.clear()
    login(client, "manager1")
    log = client.get("/api/audit", params={"action": "user.password"}).json()
    assert [(e["actor"], e["target"]) for e in log] == [("guard1", "guard1")]


def test_admin_disables_a_user_at_once(client: TestClient, login: Callable[..., str]) -> None:
    token = login(client, "resident1")
    client.cookies.clear()
    login(client, "admin1")
    off = client.put("/api/users/resident1/active", json={"active": False})
    assert off.status_code == 200 and off.json()["active"] is False
    me = client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 401
    again = client.post("/api/auth/login", json={"username": "resident1", "password": PASSWORD})
    assert again.status_code == 401
    assert client.put("/api/users/admin1/active", json={"active": False}).status_code == 409
    assert client.put("/api/users/ghost/active", json={"active": False}).status_code == 404
    assert client.put("/api/users/resident1/active", json={"active": True}).status_code == 200
    actions = [e["action"] for e in client.get("/api/audit", params={"target": "resident1"}).json()]
    assert actions == ["user.active", "user.active"]
    client.cookies.clear()
    login(client, "resident1")  # enabled again: signing in works


def test_websocket_cookie_only_from_the_same_origin(
    client: TestClient, login: Callable[..., str]
) -> None:
    from starlette.websockets import WebSocketDisconnect

    token = login(client, "guard1")  # cookie held by the client
    same = {"Origin": "http://testserver"}
    with client.websocket_connect("/probe/ws", headers=same) as ws:
        assert ws.receive_json() == {"user": "guard1"}
    evil = {"Origin": "http://evil.example"}
    with (
        pytest.raises(WebSocketDisconnect) as refused,
        client.websocket_connect("/probe/ws", headers=evil),
    ):
        pass
    assert refused.value.code == 1008
    # An explicit token is not ambient authority: accepted from anywhere.
    with client.websocket_connect(f"/probe/ws?token={token}", headers=evil) as ws:
        assert ws.receive_json() == {"user": "guard1"}

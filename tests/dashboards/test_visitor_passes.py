"""Visitor passes: issue with a QR code, roles, validation, audit, revoke."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import segno
from fastapi.testclient import TestClient

Login = Callable[[TestClient, str], None]


@pytest.fixture
def small_db_url(db_url: str) -> str:
    """Visitor passes run on SQLite and on PostgreSQL."""
    return db_url


def _until(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def test_guard_issues_a_pass_with_its_qr_code(client: TestClient, login: Login) -> None:
    login(client, "guard1")
    response = client.post(
        "/api/visitor-passes",
        json={"visitor_name": "王先生", "host": "b1-101", "valid_until": _until(4), "max_uses": 2},
    )
    assert response.status_code == 201, response.text
    issued = response.json()
    assert issued["qr_text"] == "LINLI-PASS:" + issued["code"]
    assert issued["max_uses"] == 2 and issued["uses"] == 0 and issued["created_by"] == "guard1"
    qr = client.get(f"/api/visitor-passes/{issued['id']}/qr.svg")
    assert qr.status_code == 200 and qr.headers["content-type"].startswith("image/svg+xml")
    # The SVG is exactly the QR code of the pass text (segno is deterministic).
    expected = io.BytesIO()
    segno.make(issued["qr_text"], error="m").save(expected, kind="svg", scale=8, border=4)
    assert qr.content == expected.getvalue()
    assert b"http://www.w3.org/2000/svg" in qr.content
    listed = client.get("/api/visitor-passes").json()
    assert [p["id"] for p in listed] == [issued["id"]]
    audit = client.get("/api/audit")  # guards may not read the audit log…
    assert audit.status_code == 403
    client.cookies.clear()
    login(client, "manager1")  # …managers may, and see the issue
    entries = client.get("/api/audit", params={"action": "visitor_pass.issue"}).json()
    assert entries[0]["actor"] == "guard1"
    assert entries[0]["target"] == f"visitor_pass:{issued['id']}"


def test_pass_window_is_validated(client: TestClient, login: Login) -> None:
    login(client, "guard1")
    past = client.post("/api/visitor-passes", json={"visitor_name": "x", "valid_until": _until(-1)})
    assert past.status_code == 422
    long = client.post(
        "/api/visitor-passes", json={"visitor_name": "x", "valid_until": _until(24 * 31)}
    )
    assert long.status_code == 422
    naive = client.post(
        "/api/visitor-passes", json={"visitor_name": "x", "valid_until": "2030-01-01T00:00:00"}
    )
    assert naive.status_code == 422
    zero = client.post(
        "/api/visitor-passes", json={"visitor_name": "x", "valid_until": _until(1), "max_uses": 0}
    )
    assert zero.status_code == 422
    assert client.get("/api/visitor-passes").json() == []


def test_roles_on_passes(client: TestClient, login: Login) -> None:
    body = {"visitor_name": "李女士", "valid_until": _until(2)}
    assert client.post("/api/visitor-passes", json=body).status_code == 401
    login(client, "viewer1")
    assert client.post("/api/visitor-passes", json=body).status_code == 403
    client.cookies.clear()
    login(client, "guard1")
    by_guard = client.post("/api/visitor-passes", json=body).json()
    client.cookies.clear()
    login(client, "resident1")
    own = client.post("/api/visitor-passes", json=body)
    assert own.status_code == 201
    assert client.get(f"/api/visitor-passes/{own.json()['id']}/qr.svg").status_code == 200
    assert client.get(f"/api/visitor-passes/{by_guard['id']}/qr.svg").status_code == 403
    assert client.get("/api/visitor-passes").status_code == 403  # residents do not list all
    assert client.post(f"/api/visitor-passes/{by_guard['id']}/revoke").status_code == 403


def test_revoked_pass_leaves_the_active_list(client: TestClient, login: Login) -> None:
    login(client, "manager1")
    issued = client.post(
        "/api/visitor-passes", json={"visitor_name": "快递", "valid_until": _until(1)}
    ).json()
    revoked = client.post(f"/api/visitor-passes/{issued['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked"] is True
    assert client.get("/api/visitor-passes").json() == []
    assert [p["id"] for p in client.get("/api/visitor-passes?active=false").json()] == [
        issued["id"]
    ]
    assert client.post("/api/visitor-passes/9999/revoke").status_code == 404
    actions = [e["action"] for e in client.get("/api/audit").json()]
    assert actions[:2] == ["visitor_pass.revoke", "visitor_pass.issue"]

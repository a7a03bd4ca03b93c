"""Role checks on every API route of the real cloud app, and the role × action matrix.

The walk covers every route the app has, whichever area added it: a route without a role check
(or an explicit ``public`` marker) fails here, and so does a public route nobody reviewed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.routing import APIWebSocketRoute, iter_route_contexts
from sqlalchemy.orm import Session
from starlette.routing import Mount, Route
from starlette.websockets import WebSocketDisconnect

from cloud.alerts import service as alerts
from cloud.alerts.states import Severity
from cloud.auth.deps import ALL_ROLES, Role, RouteAccess, route_access
from tests.dashboards.screens_support import Cloud

# Deliberately open routes, each reviewed: why it may be public.
REVIEWED_PUBLIC = {
    ("GET", "/health"): "liveness probe, no data",
    ("GET", "/ready"): "readiness probe, no data",
    ("GET", "/metrics"): "Prometheus scrape (counters only); restrict at the proxy",
    ("POST", "/api/auth/login"): "signing in",
    ("GET", "/api/ui/config"): "time zone and languages for the login page",
    ("GET", "/api/faces/gallery/{version}"): "gateways fetch with a capability token",
    ("GET", "/"): "redirect to the console page",
    ("GET", "/console"): "static page; its data needs a session",
    ("GET", "/gate"): "static page; its data needs a session",
    ("GET", "/dev"): "static page; its data needs a session",
    ("GET", "/login"): "static page",
    ("GET", "/incidents"): "static page; its data needs a session (managers)",
    ("GET", "/resident"): "static page; its data needs a session (the resident's own reports)",
    ("GET", "/responder"): "static page; its data needs a session (the responder's orgs)",
    ("GET", "/risk"): "static page; its data needs a session (managers)",
}
# FastAPI's own documentation routes (no data) and the static assets.
FRAMEWORK = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
STATIC_MOUNTS = {"/static"}


def walk(cloud: Cloud) -> list[tuple[str, str, RouteAccess, bool]]:
    """(method, path, access, websocket) for every route of the app."""
    found = []
    for context in iter_route_contexts(cloud.app.routes):
        route: Any = context
        path = context.path or ""
        if isinstance(context.original_route, Mount):
            assert path in STATIC_MOUNTS, f"unexpected mount {path}"
            continue
        if isinstance(context.original_route, APIWebSocketRoute):
            found.append(("WS", path, route_access(route), True))
            continue
        if isinstance(context.original_route, Route) and path in FRAMEWORK:
            continue
        for method in sorted(context.methods or ()):
            if method != "HEAD":
                found.append((method, path, route_access(route), False))
    return found


def test_every_route_has_a_role_check(cloud: Cloud) -> None:
    routes = walk(cloud)
    assert len(routes) > 40  # the walk sees the routers of every area
    paths = {p for _, p, _, _ in routes}
    assert {"/api/alerts", "/api/commands", "/api/stream", "/api/auth/login"} <= paths
    unchecked = [(m, p) for m, p, access, _ in routes if not access.checked]
    assert not unchecked, f"routes without a role check: {unchecked}"
    public = {(m, p) for m, p, access, _ in routes if access.public and access.roles is None}
    assert public <= set(REVIEWED_PUBLIC), (
        f"unreviewed public routes: {public - set(REVIEWED_PUBLIC)}"
    )


def test_every_screen_is_a_reviewed_public_page(cloud: Cloud) -> None:
    """Each page of dashboards.SCREENS is served without a session (its data is not) and was
    reviewed above; which role sees which screen is tested in Chromium
    (test_gov_screens.py::test_each_role_sees_its_own_screens)."""
    from dashboards import SCREENS

    routes = {(m, p): access for m, p, access, _ in walk(cloud)}
    for path in SCREENS:
        assert ("GET", path) in REVIEWED_PUBLIC, path
        assert routes[("GET", path)].public, path


def test_the_walk_catches_a_forgotten_check_and_an_unreviewed_public_route(
    cloud: Cloud,
) -> None:
    """The check above can fail: a route added without a role check, including one inside an
    included router, is found; so is a new public route nobody reviewed."""
    from fastapi import APIRouter, Depends

    from cloud.auth.deps import public

    nested = APIRouter(prefix="/api/oops")

    @nested.get("/forgotten")
    def forgotten() -> str:
        return "anyone"

    @nested.get("/open", dependencies=[Depends(public)])
    def opened() -> str:
        return "anyone"

    cloud.app.include_router(nested)
    routes = {(m, p): access for m, p, access, _ in walk(cloud)}
    assert not routes[("GET", "/api/oops/forgotten")].checked
    assert routes[("GET", "/api/oops/open")].public
    assert ("GET", "/api/oops/open") not in REVIEWED_PUBLIC


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def test_no_route_answers_without_a_session(cloud: Cloud) -> None:
    client = cloud.client
    client.cookies.clear()
    for method, path, access, websocket in walk(cloud):
        if access.public and access.roles is None:
            continue
        if websocket:
            with (
                pytest.raises(WebSocketDisconnect) as info,
                cloud.testclient.websocket_connect(path),
            ):
                pass
            assert info.value.code == 1008, path
            continue
        response = client.request(method, _url(path), json={})
        assert response.status_code == 401, (method, path, response.status_code)


def test_every_role_is_refused_exactly_where_the_route_says(cloud: Cloud) -> None:
    """For each route and each role: 403 iff the role is not admitted (dummy arguments, so
    admitted roles get 404/409/422 or 200 — anything but 401/403)."""
    client = cloud.client
    checked = 0
    for method, path, access, websocket in walk(cloud):
        if websocket or access.roles is None or (method, path) == ("POST", "/api/auth/logout"):
            continue
        for role in Role:
            response = client.request(method, _url(path), json={}, headers=cloud.auth(role))
            allowed = role in access.roles
            if allowed:
                assert response.status_code not in (401, 403), (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.status_code)
            checked += 1
    assert checked > 200


def _raise(cloud: Cloud, subject: str, rule: str = "smoke-alarm") -> int:
    spec = alerts.RaiseSpec(
        site="s1",
        rule_id=rule,
        subject=subject,
        severity=Severity.CRITICAL,
        title_en="Smoke",
        title_zh="烟雾报警",
        ts=datetime.now(UTC),
    )
    with Session(cloud.app.state.engine) as db:
        outcome = alerts.raise_alert(db, spec, datetime.now(UTC))
        db.commit()
    return outcome.alert.id


MATRIX: dict[str, set[Role]] = {
    "acknowledge an alert": {Role.ADMIN, Role.MANAGER, Role.GUARD, Role.RESPONDER},
    "close an alert": {Role.ADMIN, Role.MANAGER},
    "open a door": {Role.ADMIN, Role.MANAGER, Role.GUARD},
    "see the access feed": {Role.ADMIN, Role.MANAGER, Role.GUARD, Role.RESPONDER},
    "read the audit log": {Role.ADMIN, Role.MANAGER},
    "change a role": {Role.ADMIN},
    "issue a visitor pass": {Role.ADMIN, Role.MANAGER, Role.GUARD, Role.RESIDENT},
    "run a scenario": {Role.ADMIN},
    "read alerts": set(ALL_ROLES),
}


@pytest.mark.parametrize("role", list(Role))
def test_role_action_matrix(cloud: Cloud, role: Role) -> None:
    client, headers = cloud.client, cloud.auth(role)
    results: dict[str, bool] = {}

    alert = _raise(cloud, f"smoke-{role.value}")
    ack = client.post(f"/api/alerts/{alert}/ack", json={}, headers=headers)
    results["acknowledge an alert"] = ack.status_code == 200
    resolved = _raise(cloud, f"smoke-r-{role.value}")
    manager = cloud.auth(Role.MANAGER)
    assert client.post(f"/api/alerts/{resolved}/ack", json={}, headers=manager).status_code == 200
    assert client.post(f"/api/alerts/{resolved}/resolve", json={}, headers=manager).is_success
    close = client.post(f"/api/alerts/{resolved}/close", json={"note": "ok"}, headers=headers)
    results["close an alert"] = close.status_code == 200

    door = client.post(
        "/api/commands",
        json={"site": "s1", "gateway": "gw1", "target": "door-1", "name": "door.open",
              "reason": "courier at the gate"},
        headers=headers,
    )  # fmt: skip
    results["open a door"] = door.status_code == 202
    results["see the access feed"] = client.get("/api/access-events", headers=headers).is_success
    results["read the audit log"] = client.get("/api/audit", headers=headers).is_success
    results["change a role"] = client.put(
        "/api/users/viewer1/role", json={"role": "viewer"}, headers=headers
    ).is_success
    results["issue a visitor pass"] = client.post(
        "/api/visitor-passes",
        json={"visitor_name": "访客", "valid_until": "2099-01-01T00:00:00+08:00"},
        headers=headers,
    ).status_code in (201, 422)  # 422: the window is too long — but the role was admitted
    results["run a scenario"] = (
        client.post("/api/dev/scenarios/no-such/start", headers=headers).status_code == 404
    )
    results["read alerts"] = client.get("/api/alerts", headers=headers).is_success

    expected = {action: role in roles for action, roles in MATRIX.items()}
    assert results == expected

    # Denied actions left no trace; allowed sensitive ones are in the audit log.
    log = client.get("/api/audit?limit=1000", headers=manager).json()
    mine = {(e["action"], e["target"]) for e in log if e["actor"] == f"{role.value}1"}
    assert (("door.open", "s1/door-1") in mine) == expected["open a door"]
    assert (("alert.close", f"alert:{resolved}") in mine) == expected["close an alert"]


def test_stream_hides_access_events_from_non_staff(cloud: Cloud) -> None:
    # incident changes are filtered per event (who may see that incident), not per role
    for role, expected in [(Role.GUARD, ["access", "alert", "incident", "notification"]),
                           (Role.VIEWER, ["alert", "incident", "notification"])]:  # fmt: skip
        with cloud.testclient.websocket_connect("/api/stream", headers=cloud.auth(role)) as ws:
            hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["topics"] == expected

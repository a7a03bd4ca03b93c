"""The alerts API on a real database: list, workflow over HTTP with 409 refusals, CSV, KPIs,
role checks, audit, and the live stream."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime

from cloud.alerts import service
from cloud.alerts.states import Severity
from cloud.alerts.views import live_event
from cloud.auth import audit
from cloud.auth.deps import Role
from tests.cloud.api.conftest import Cloud


def _raise(cloud: Cloud, subject: str = "smoke-1", severity: Severity = Severity.CRITICAL) -> int:
    now = datetime.now(UTC)
    with cloud.services.sessions.begin() as db:
        outcome = service.raise_alert(
            db,
            service.RaiseSpec(
                site="s1",
                rule_id="smoke-alarm",
                subject=subject,
                severity=severity,
                title_en="Smoke alarm",
                title_zh="烟感报警",
                ts=now,
            ),
            now,
        )
    cloud.services.hub.publish(live_event(outcome.alert, outcome.outcome))
    return outcome.alert.id


def test_workflow_over_http_refuses_illegal_steps_with_409(
    make_cloud: Callable[..., Cloud],
) -> None:
    cloud = make_cloud()
    aid = _raise(cloud)
    assert cloud.post(f"/api/alerts/{aid}/close").status_code == 409
    assert cloud.post(f"/api/alerts/{aid}/start", Role.GUARD).status_code == 409
    assert cloud.post(f"/api/alerts/{aid}/ack", Role.GUARD).status_code == 200
    assert cloud.post(f"/api/alerts/{aid}/ack", Role.GUARD).status_code == 409
    r = cloud.post(f"/api/alerts/{aid}/assign", json={"assignee": "guard1"})
    assert r.status_code == 200 and r.json()["assignee"] == "guard1"
    assert cloud.post(f"/api/alerts/{aid}/start", Role.GUARD).json()["status"] == "in_progress"
    r = cloud.post(f"/api/alerts/{aid}/comment", Role.GUARD, json={"text": "extinguished"})
    assert r.status_code == 200
    r = cloud.post(f"/api/alerts/{aid}/resolve", Role.GUARD, json={"note": "cooking smoke"})
    assert r.json()["status"] == "resolved"
    assert cloud.post(f"/api/alerts/{aid}/close", Role.GUARD).status_code == 403
    assert cloud.post(f"/api/alerts/{aid}/close").json()["status"] == "closed"
    assert cloud.post(f"/api/alerts/{aid}/resolve").status_code == 409
    detail = cloud.get(f"/api/alerts/{aid}", Role.VIEWER)
    kinds = [e["kind"] for e in detail["timeline"]]
    assert kinds == ["raised", "acknowledge", "assign", "start", "comment", "resolve", "close"]
    assert [e["actor"] for e in detail["timeline"]][1:] == [
        "guard1", "manager1", "guard1", "guard1", "guard1", "manager1",
    ]  # fmt: skip
    with cloud.services.sessions() as db:
        closes = audit.entries(db, action="alert.close")
    assert [(e.actor, e.target) for e in closes] == [("manager1", f"alert:{aid}")]
    assert cloud.client.post(f"/api/alerts/{aid}/ack").status_code == 401
    assert cloud.post("/api/alerts/999999/ack").status_code == 404


def test_viewer_reads_but_cannot_act(make_cloud: Callable[..., Cloud]) -> None:
    cloud = make_cloud()
    aid = _raise(cloud)
    assert [a["id"] for a in cloud.get("/api/alerts", Role.VIEWER)] == [aid]
    for action in ("ack", "start", "resolve", "close", "escalate"):
        assert cloud.post(f"/api/alerts/{aid}/{action}", Role.VIEWER).status_code == 403
    assert cloud.get(f"/api/alerts/{aid}")["alert"]["status"] == "open"


def test_filters_csv_and_kpis(make_cloud: Callable[..., Cloud]) -> None:
    cloud = make_cloud()
    a = _raise(cloud, "smoke-1", Severity.CRITICAL)
    b = _raise(cloud, "smoke-2", Severity.MINOR)
    assert cloud.post(f"/api/alerts/{b}/ack").status_code == 200
    crit = cloud.get("/api/alerts", params={"severity": "critical"})
    assert [x["id"] for x in crit] == [a]
    acked = cloud.get("/api/alerts", params={"status": ["acknowledged", "resolved"]})
    assert [x["id"] for x in acked] == [b]
    response = cloud.client.get("/api/alerts/export.csv", headers=cloud.auth(Role.MANAGER))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text.lstrip("\ufeff"))))
    assert sorted(int(r["id"]) for r in rows) == sorted([a, b])
    assert {r["title_zh"] for r in rows} == {"烟感报警"}
    k = cloud.get("/api/kpis", params={"site": "s1"})
    assert k["open_by_severity"]["critical"] == 1 and k["open_by_severity"]["minor"] == 1
    assert k["acknowledged_count"] == 1 and k["mtta_s"] is not None
    assert (
        cloud.client.get("/api/alerts/export.csv", headers=cloud.auth(Role.VIEWER)).status_code
        == 403
    )


def test_websocket_receives_new_alert_and_requires_sign_in(
    make_cloud: Callable[..., Cloud],
) -> None:
    cloud = make_cloud()
    with cloud.client.websocket_connect(
        f"/api/stream?token={cloud.tokens[Role.VIEWER]}&topics=alert"
    ) as ws:
        hello = ws.receive_json()
        assert hello["type"] == "hello" and hello["topics"] == ["alert"]
        aid = _raise(cloud)
        event = ws.receive_json()
        assert event["type"] == "alert" and event["alert"]["id"] == aid
        assert event["change"] == "created"
    from starlette.websockets import WebSocketDisconnect

    try:
        with cloud.client.websocket_connect("/api/stream") as ws:
            ws.receive_json()
    except WebSocketDisconnect as exc:
        assert exc.code == 1008
    else:
        raise AssertionError("an anonymous stream was accepted")


def test_rules_health_metrics_and_openapi(make_cloud: Callable[..., Cloud]) -> None:
    cloud = make_cloud()
    rules = cloud.get("/api/rules", Role.VIEWER)
    ids = {r["id"] for r in rules["rules"]}
    assert {"smoke-alarm", "confirmed-fire", "edge-smoke-local"} <= ids
    assert rules["sources"] == ["default pack"]
    assert cloud.get("/api/rules/confirmed-fire")["condition"] == "correlation"
    assert cloud.client.get("/api/rules").status_code == 401
    assert cloud.client.get("/health").json() == {"status": "ok"}
    ready = cloud.client.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"] == {"database": True}
    _raise(cloud)
    text = cloud.client.get("/metrics").text
    assert 'linli_alerts_active{severity="critical"} 1.0' in text
    spec = cloud.client.get("/openapi.json").json()
    assert "/api/alerts/{alert_id}/ack" in spec["paths"]
    assert "/api/commands" in spec["paths"]


def test_manual_escalation_climbs_a_tier_and_is_audited(make_cloud: Callable[..., Cloud]) -> None:
    cloud = make_cloud(
        escalation={"tiers": [{"after_s": 3600, "channels": ["app"], "label": "director"}]}
    )
    aid = _raise(cloud)
    r = cloud.post(f"/api/alerts/{aid}/escalate", Role.GUARD, json={"note": "no answer"})
    assert r.status_code == 200 and r.json()["escalation_tier"] == 1
    events = cloud.get(f"/api/alerts/{aid}/timeline")
    escalated = [e for e in events if e["kind"] == "escalated"]
    assert [(e["actor"], e["note"], e["detail"]["label"]) for e in escalated] == [
        ("guard1", "no answer", "director")
    ]
    with cloud.services.sessions() as db:
        assert [e.actor for e in audit.entries(db, action="alert.escalate")] == ["guard1"]
    assert cloud.post(f"/api/alerts/{aid}/ack").status_code == 200
    assert cloud.post(f"/api/alerts/{aid}/resolve").status_code == 200
    assert cloud.post(f"/api/alerts/{aid}/escalate").status_code == 409


def test_stream_sends_in_app_notifications_only_to_their_roles(
    make_cloud: Callable[..., Cloud],
) -> None:
    cloud = make_cloud()
    notice = {"type": "notification", "roles": ["manager"], "notice": {"alert_id": 1}}
    with (
        cloud.client.websocket_connect("/api/stream", headers=cloud.auth(Role.MANAGER)) as mgr,
        cloud.client.websocket_connect("/api/stream", headers=cloud.auth(Role.RESIDENT)) as res,
    ):
        mgr.receive_json()
        res.receive_json()
        cloud.services.hub.publish(notice)
        aid = _raise(cloud)
        assert mgr.receive_json() == notice
        assert mgr.receive_json()["alert"]["id"] == aid
        assert res.receive_json()["alert"]["id"] == aid  # the notification was not for residents

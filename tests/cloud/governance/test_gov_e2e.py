"""Acceptance (issue 9): a resident's report becomes an incident, is dispatched, passes its
deadline, the whistle summons a department, the department reports in, the incident is resolved,
the resident confirms, the manager closes — every step checked in the API and the audit trail.

Through the real app over HTTP, on SQLite and PostgreSQL. Time is a fake clock shared by the
routes and the deadline loop, driven by the test (no sleeps).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cloud.auth.deps import Role
from cloud.governance.deadlines import Due
from tests.cloud.api.conftest import Cloud
from tests.cloud.governance.conftest import JPEG, FakeClock, GovApp

SITE = "e2e-site"
M = Role.MANAGER


def iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _setup(g: GovApp) -> dict[str, int]:
    """Organisations and members, all through the API (as the manager)."""

    def org(body: dict[str, Any]) -> int:
        made = g.call("POST", "/api/gov/organisations", M, 201, json={"site": SITE, **body})
        return int(made["id"])

    ids = {
        "property": org({"name": "幸福物业", "name_en": "Happy Property", "kind": "property"}),
        "committee": org({"name": "幸福社区居委会", "kind": "committee"}),
        "utilities": org({"name": "自来水公司", "kind": "department", "department": "utilities",
                          "deadlines": {"ack_s": 600, "arrive_s": 1800, "resolve_s": 7200}}),
        "fire": org({"name": "消防站", "kind": "department", "department": "fire"}),
    }  # fmt: skip
    for org_key, username, role in (("property", "pm1", "member"),
                                    ("utilities", "water1", "member"),
                                    ("committee", "lead1", "lead")):  # fmt: skip
        g.call("POST", f"/api/gov/organisations/{ids[org_key]}/members", M, 201,
               json={"username": username, "role": role})  # fmt: skip
    return ids


def test_report_to_closure_with_a_whistle(gov_app: GovApp) -> None:
    g, clock = gov_app, gov_app.clock
    t0 = clock.now
    g.login("res1", Role.RESIDENT)
    g.user("pm1", Role.RESPONDER)
    g.user("water1", Role.RESPONDER)
    orgs = _setup(g)

    # 1. The resident reports a leak with a photo.
    photo = base64.b64encode(JPEG).decode()
    report = g.call("POST", "/api/gov/reports", "res1", 201, json={
        "site": SITE, "category": "repair_water", "building": "b1", "location": "1-101 厨房",
        "description": "水管漏水", "photo_b64": photo, "photo_type": "image/jpeg"})  # fmt: skip
    iid = report["id"]
    assert (report["state"], report["source"], report["reporter"]) == ("reported", "report", "res1")
    assert iso(report["created_at"]) == t0 and iso(report["due_at"]) == t0 + timedelta(hours=24)
    assert len(report["photos"]) == 1 and report["photos"][0]["uploaded_by"] == "res1"
    pic = g.client.get(f"/api/gov/incidents/{iid}/photos/{report['photos'][0]['id']}",
                       headers=g.headers("res1"))  # fmt: skip
    assert pic.status_code == 200 and pic.content == JPEG
    assert pic.headers["content-type"] == "image/jpeg"

    # 2. The manager dispatches it to the property company, 10 minutes to fix.
    t_dispatch = clock.advance(60)
    out = g.call("POST", f"/api/gov/incidents/{iid}/dispatch", M,
                 json={"org_id": orgs["property"], "assignee": "pm1", "due_s": 600})  # fmt: skip
    assert (out["state"], out["org_id"], out["org_name"], out["assignee"]) == (
        "dispatched", orgs["property"], "幸福物业", "pm1")  # fmt: skip
    assert iso(out["dispatched_at"]) == t_dispatch
    assert iso(out["due_at"]) == t_dispatch + timedelta(seconds=600)

    t_accept = clock.advance(60)
    out = g.call("POST", f"/api/gov/incidents/{iid}/accept", "pm1")
    assert out["state"] == "in_progress" and iso(out["accepted_at"]) == t_accept
    assert g.step() == []  # nothing due yet

    # 3. The deadline passes: the loop whistles to the utilities department (catalogue).
    t_missed = clock.advance(600)
    assert g.step() == [Due("deadline", iid)]
    assert g.step() == []  # once
    out = g.call("GET", f"/api/gov/incidents/{iid}", M)
    assert out["overdue"] and iso(out["deadline_missed_at"]) == t_missed
    [whistle] = out["whistles"]
    assert (whistle["org_id"], whistle["auto"], whistle["reason"]) == (
        orgs["utilities"], True, "deadline")  # fmt: skip
    assert iso(whistle["ack_due"]) == t_missed + timedelta(seconds=600)
    assert iso(whistle["resolve_due"]) == t_missed + timedelta(seconds=7200)

    # 4. The board: the department has not reported; after its ack deadline, a reminder.
    [row] = g.call("GET", f"/api/gov/whistles?open=1&site={SITE}", M)
    assert (row["id"], row["acked_at"], row["overdue_stage"], row["reminders"]) == (
        whistle["id"], None, None, 0)  # fmt: skip
    t_remind = clock.advance(601)
    assert g.step() == [Due("remind", whistle["id"], "ack")]
    assert g.step() == []  # the next reminder waits remind_every_s
    [row] = g.call("GET", "/api/gov/whistles?open=1", M)
    assert (row["acked_at"], row["overdue_stage"], row["reminders"]) == (None, "ack", 1)
    told = g.call("GET", "/api/notifications", "water1")
    assert any(n["reason"] == "gov_reminder" and f"#{iid}" in n["title_en"] for n in told)
    assert g.call("GET", "/api/gov/whistles", "water1")[0]["id"] == whistle["id"]

    # 5. The department reports in, stage by stage (in order only; only its members).
    url = f"/api/gov/whistles/{whistle['id']}/report"
    g.call("POST", url, "water1", 409, json={"stage": "arrive"})
    g.call("POST", url, "pm1", 403, json={"stage": "ack"})
    times = {}
    for stage in ("ack", "arrive", "resolve"):
        times[stage] = clock.advance(300)
        row = g.call("POST", url, "water1", json={"stage": stage, "note": f"{stage} ok"})
    assert [iso(row[k]) for k in ("acked_at", "arrived_at", "resolved_at")] == list(
        times.values())  # fmt: skip
    assert row["overdue_stage"] is None
    assert g.call("GET", "/api/gov/whistles?open=1", M) == []

    # 6. The assignee arrives and resolves with a disposal note.
    t_arrive = clock.advance(60)
    out = g.call("POST", f"/api/gov/incidents/{iid}/arrive", "pm1", json={})
    assert out["state"] == "in_progress" and iso(out["arrived_at"]) == t_arrive
    g.call("POST", f"/api/gov/incidents/{iid}/resolve", "pm1", 422, json={"note": " "})
    t_resolve = clock.advance(60)
    out = g.call("POST", f"/api/gov/incidents/{iid}/resolve", "pm1",
                 json={"note": "更换阀门，已通水"})  # fmt: skip
    assert (out["state"], out["disposal_note"]) == ("resolved", "更换阀门，已通水")
    assert iso(out["resolved_at"]) == t_resolve

    # 7. Closing before the resident confirms is refused; the resident confirms; closed.
    refused = g.client.post(f"/api/gov/incidents/{iid}/close", headers=g.headers(M), json={})
    assert refused.status_code == 409 and "confirmed" in refused.json()["detail"]
    t_confirm = clock.advance(120)
    out = g.call("POST", f"/api/gov/incidents/{iid}/confirm", "res1",
                 json={"rating": 4, "comment": "很快"})  # fmt: skip
    assert (out["rating"], out["resident_comment"]) == (4, "很快")
    assert iso(out["confirmed_at"]) == t_confirm and out["state"] == "resolved"
    t_close = clock.advance(60)
    out = g.call("POST", f"/api/gov/incidents/{iid}/close", M, json={})
    assert out["state"] == "closed" and iso(out["closed_at"]) == t_close
    assert not out["overdue"] and out["allowed_actions"] == ["comment"]

    # 8. The timeline: who did what, in order, at the clock's times.
    lines = [(e["actor"], e["action"], iso(e["ts"])) for e in out["timeline"]]
    assert lines == [
        ("res1", "opened", t0),
        ("res1", "photo", t0),
        ("manager1", "dispatch", t_dispatch),
        ("pm1", "accept", t_accept),
        ("system", "deadline_missed", t_missed),
        ("system", "whistle", t_missed),
        ("system", "whistle_reminder", t_remind),
        ("water1", "whistle_ack", times["ack"]),
        ("water1", "whistle_arrive", times["arrive"]),
        ("water1", "whistle_resolve", times["resolve"]),
        ("pm1", "arrive", t_arrive),
        ("pm1", "resolve", t_resolve),
        ("res1", "confirm", t_confirm),
        ("manager1", "close", t_close),
    ]
    detail = {e["action"]: e["detail"] for e in out["timeline"]}
    assert detail["whistle_reminder"] == {
        "whistle_id": whistle["id"], "org_id": orgs["utilities"], "org_name": "自来水公司",
        "org_name_en": None, "stage": "ack", "reminder": 1,
    }  # fmt: skip
    assert detail["whistle_ack"]["late"] is True and detail["whistle_resolve"]["late"] is False
    assert detail["confirm"]["rating"] == 4 and detail["resolve"]["note"] == "更换阀门，已通水"

    # 9. The audit log has the sensitive steps, by whom, in order.
    audit = g.call("GET", f"/api/audit?target=incident:{iid}&limit=100", M)
    assert [(e["actor"], e["action"]) for e in reversed(audit)] == [
        ("manager1", "gov.incident.dispatch"),
        ("pm1", "gov.incident.resolve"),
        ("manager1", "gov.incident.close"),
    ]

    # 10. The resident's list shows their report, closed and rated.
    [mine] = g.call("GET", "/api/gov/incidents", "res1")
    assert (mine["id"], mine["state"], mine["rating"]) == (iid, "closed", 4)


def test_the_app_runs_the_deadline_loop_itself(make_cloud: Callable[..., Cloud]) -> None:
    """The loop is a supervised task of the app's lifespan, on the real clock: an incident
    opened two days ago (per the routes' clock) is whistled within a few ticks."""
    cloud = make_cloud(gov_tick_s=0.2)
    cloud.app.state.gov_clock = FakeClock(datetime.now(UTC) - timedelta(days=2))
    department = {"name": "消防站", "kind": "department", "department": "fire", "site": SITE}
    fire = cloud.post("/api/gov/organisations", json=department).json()
    incident = {"site": SITE, "title": "楼道堆物", "category": "fire_hazard"}
    made = cloud.post("/api/gov/incidents", json=incident).json()

    def whistled() -> list[Any]:
        found: list[Any] = cloud.get(f"/api/gov/incidents/{made['id']}")["whistles"]
        return found

    [whistle] = cloud.wait_for(whistled, timeout=30)
    assert (whistle["org_id"], whistle["auto"], whistle["blown_by"]) == (fire["id"], True, "system")

"""Bad input and who-may-do-what on the governance routes, through the real app."""

from __future__ import annotations

import base64
from typing import Any

from cloud.auth.deps import Role
from cloud.governance.models import PHOTO_MAX_BYTES
from tests.cloud.governance.conftest import JPEG, PNG, GovApp

SITE = "api-site"
M = Role.MANAGER


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def field_of(answer: Any) -> list[str]:
    """The field names a 422 names (FastAPI's own and the governance errors alike)."""
    return [str(d["loc"][-1]) for d in answer.json()["detail"]]


def report(g: GovApp, who: str, **kw: Any) -> Any:
    body = {"site": SITE, "category": "noise", "location": "3-201", "description": "深夜装修"}
    return g.client.post("/api/gov/reports", headers=g.headers(who), json=body | kw)


def test_unknown_category_org_and_kind_name_the_field(gov_app: GovApp) -> None:
    g = gov_app
    g.user("res1", Role.RESIDENT)
    bad = report(g, "res1", category="no_such")
    assert bad.status_code == 422 and field_of(bad) == ["category"]
    assert "repair_water" in bad.json()["detail"][0]["msg"]
    iid = report(g, "res1").json()["id"]
    bad = g.client.post(f"/api/gov/incidents/{iid}/dispatch", headers=g.headers(M),
                        json={"org_id": 4242})  # fmt: skip
    assert bad.status_code == 422 and field_of(bad) == ["org_id"]
    bad = g.client.post("/api/gov/organisations", headers=g.headers(M),
                        json={"name": "x", "kind": "club", "site": SITE})  # fmt: skip
    assert bad.status_code == 422 and field_of(bad) == ["kind"]
    body = {"name": "x", "kind": "grid", "site": SITE, "department": "fire"}
    bad = g.client.post("/api/gov/organisations", headers=g.headers(M), json=body)
    assert bad.status_code == 422 and field_of(bad) == ["department"]
    grid = g.call("POST", "/api/gov/organisations", M, 201,
                  json={"name": "网格", "kind": "grid", "site": SITE})  # fmt: skip
    bad = g.client.post(f"/api/gov/incidents/{iid}/whistle", headers=g.headers(M),
                        json={"departments": [grid["id"]], "reason": "help"})  # fmt: skip
    assert bad.status_code == 422 and field_of(bad) == ["departments"]
    item = g.call("GET", "/api/gov/catalogue", "res1")[0]
    bad = g.client.post("/api/gov/catalogue", headers=g.headers(M), json={
        "category": item["category"], "name_zh": "重复", "name_en": "dup", "org_kind": "property",
        "deadline_s": 3600})  # fmt: skip
    assert bad.status_code == 422 and field_of(bad) == ["category"]
    assert g.call("GET", f"/api/gov/incidents/{iid}", M)["timeline"][-1]["action"] == "opened"


def test_invalid_transitions_are_409_naming_the_allowed_states(gov_app: GovApp) -> None:
    g = gov_app
    g.user("res1", Role.RESIDENT)
    iid = report(g, "res1").json()["id"]
    close = g.client.post(f"/api/gov/incidents/{iid}/close", headers=g.headers(M), json={})
    assert close.status_code == 409
    assert "cannot close from reported (allowed from resolved)" in close.json()["detail"]
    accept = g.client.post(f"/api/gov/incidents/{iid}/accept", headers=g.headers(M))
    assert accept.status_code == 409 and "allowed from dispatched" in accept.json()["detail"]
    confirm = g.client.post(f"/api/gov/incidents/{iid}/confirm", headers=g.headers("res1"),
                            json={"rating": 5})  # fmt: skip
    assert confirm.status_code == 409 and "allowed from resolved" in confirm.json()["detail"]
    g.call("POST", f"/api/gov/incidents/{iid}/cancel", M, json={"reason": "duplicate"})
    again = g.client.post(f"/api/gov/incidents/{iid}/cancel", headers=g.headers(M),
                          json={"reason": "twice"})  # fmt: skip
    assert again.status_code == 409 and "cannot cancel from cancelled" in again.json()["detail"]
    assert g.call("GET", f"/api/gov/incidents/{iid}", M)["state"] == "cancelled"


def test_bad_photos_are_refused_and_nothing_is_stored(gov_app: GovApp) -> None:
    g = gov_app
    g.user("res1", Role.RESIDENT)
    cases = [
        (b64(b"GIF89a" + bytes(20)), "image/jpeg", "photo_b64"),  # not JPEG/PNG
        ("%%% not base64 %%%", "image/jpeg", "photo_b64"),
        (b64(JPEG[:3] + bytes(PHOTO_MAX_BYTES)), "image/jpeg", "photo_b64"),  # 2 MB + 3
        (b64(JPEG), "image/png", "photo_type"),  # declared PNG, bytes JPEG
        (b64(JPEG), "image/gif", "photo_type"),
    ]
    for data, kind, field in cases:
        bad = report(g, "res1", photo_b64=data, photo_type=kind)
        assert bad.status_code == 422, (field, bad.text)
        assert field_of(bad) == [field], bad.text
    assert g.call("GET", "/api/gov/incidents", "res1") == []
    made = report(g, "res1", photo_b64=b64(PNG), photo_type="png")
    assert made.status_code == 201 and len(made.json()["photos"]) == 1
    iid = made.json()["id"]
    body = {"photo_b64": b64(b"\x00" * 10), "photo_type": "image/png"}
    bad = g.client.post(f"/api/gov/incidents/{iid}/photo", headers=g.headers("res1"), json=body)
    assert bad.status_code == 422 and field_of(bad) == ["photo_b64"]
    assert len(g.call("GET", f"/api/gov/incidents/{iid}", "res1")["photos"]) == 1


def test_residents_and_responders_see_only_their_own(gov_app: GovApp) -> None:
    g = gov_app
    for name, role in (("res1", Role.RESIDENT), ("res2", Role.RESIDENT),
                       ("pm1", Role.RESPONDER), ("fire1", Role.RESPONDER)):  # fmt: skip
        g.user(name, role)
    prop = g.call("POST", "/api/gov/organisations", M, 201,
                  json={"name": "物业", "kind": "property", "site": SITE})["id"]  # fmt: skip
    body = {"name": "消防", "kind": "department", "department": "fire", "site": SITE}
    fire = g.call("POST", "/api/gov/organisations", M, 201, json=body)["id"]
    g.call("POST", f"/api/gov/organisations/{prop}/members", M, 201, json={"username": "pm1"})
    g.call("POST", f"/api/gov/organisations/{fire}/members", M, 201, json={"username": "fire1"})
    mine = report(g, "res1").json()["id"]
    theirs = report(g, "res2").json()["id"]

    # Residents: their own reports only; another's is not found, whatever they try.
    assert [i["id"] for i in g.call("GET", "/api/gov/incidents", "res1")] == [mine]
    tries: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/api/gov/incidents/{theirs}", None),
        ("POST", f"/api/gov/incidents/{theirs}/comment", {"text": "hi"}),
        ("POST", f"/api/gov/incidents/{theirs}/confirm", {"rating": 1}),
    ]
    for method, url, payload in tries:
        answer = g.client.request(method, url, headers=g.headers("res1"), json=payload)
        assert answer.status_code == 404, (url, answer.text)
    assert g.client.get(f"/api/gov/incidents/{mine}", headers=g.headers("res2")).status_code == 404

    # Responders: nothing until dispatched or whistled to their organisation.
    assert g.call("GET", "/api/gov/incidents", "pm1") == []
    assert g.client.get(f"/api/gov/incidents/{mine}", headers=g.headers("pm1")).status_code == 404
    g.call("POST", f"/api/gov/incidents/{mine}/dispatch", M, json={"org_id": prop})
    assert [i["id"] for i in g.call("GET", "/api/gov/incidents", "pm1")] == [mine]
    g.call("POST", f"/api/gov/incidents/{mine}/whistle", M,
           json={"departments": [fire], "reason": "beyond us"})  # fmt: skip
    assert [i["id"] for i in g.call("GET", "/api/gov/incidents", "fire1")] == [mine]
    # The department sees it but does not work the property's order…
    refused = g.client.post(f"/api/gov/incidents/{mine}/accept", headers=g.headers("fire1"))
    assert refused.status_code == 403
    # …and reports only on its own whistle.
    [whistle] = g.call("GET", "/api/gov/whistles", "fire1")
    assert g.call("GET", "/api/gov/whistles", "pm1") == []
    g.call("POST", f"/api/gov/whistles/{whistle['id']}/report", "fire1", json={"stage": "ack"})
    assert g.call("POST", f"/api/gov/incidents/{mine}/accept", "pm1")["state"] == "in_progress"
    # Only the reporter confirms; only the reporter or a manager reopens.
    g.call("POST", f"/api/gov/incidents/{mine}/resolve", "pm1", json={"note": "done"})
    g.call("POST", f"/api/gov/incidents/{mine}/reopen", "res2", 404, json={"reason": "no"})
    out = g.call("POST", f"/api/gov/incidents/{mine}/reopen", "res1", json={"reason": "still"})
    assert out["state"] == "in_progress" and out["resolved_at"] is None


def test_incidents_and_the_whistle_board_carry_the_english_names(gov_app: GovApp) -> None:
    g = gov_app
    prop = g.call("POST", "/api/gov/organisations", M, 201,
                  json={"name": "安居物业", "name_en": "Anju Property", "kind": "property",
                        "site": SITE})  # fmt: skip
    fire = g.call("POST", "/api/gov/organisations", M, 201,
                  json={"name": "消防救援站", "name_en": "Fire station", "kind": "department",
                        "department": "fire", "site": SITE})  # fmt: skip
    police = g.call("POST", "/api/gov/organisations", M, 201,
                    json={"name": "派出所", "kind": "department", "department": "police",
                          "site": SITE})  # fmt: skip
    body = {"site": SITE, "title": "楼道堆物", "category": "fire_hazard"}
    iid = g.call("POST", "/api/gov/incidents", M, 201, json=body)["id"]
    out = g.call("POST", f"/api/gov/incidents/{iid}/dispatch", M, json={"org_id": prop["id"]})
    assert (out["org_name"], out["org_name_en"]) == ("安居物业", "Anju Property")
    assert out["timeline"][-1]["detail"]["org_name_en"] == "Anju Property"
    out = g.call("POST", f"/api/gov/incidents/{iid}/whistle", M,
                 json={"departments": [fire["id"], police["id"]], "reason": "blocked"})  # fmt: skip
    assert {(w["org_name"], w["org_name_en"]) for w in out["whistles"]} == {
        ("消防救援站", "Fire station"), ("派出所", None)}  # fmt: skip
    board = g.call("GET", "/api/gov/whistles?open=1", M)
    assert {w["org_id"]: w["org_name_en"] for w in board} == {
        fire["id"]: "Fire station", police["id"]: None}  # fmt: skip
    listed = g.call("GET", "/api/gov/incidents", M)
    assert [(i["id"], i["org_name_en"]) for i in listed] == [(iid, "Anju Property")]

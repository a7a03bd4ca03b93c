"""The risk register through the real app: links checked at write time (422 naming the unknown
ids), the computed level, the watch view, lifecycle phases, residents' data for staff only."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cloud.alerts import service as alerts
from cloud.alerts.states import Severity
from cloud.auth.deps import Role
from cloud.registry.sitefile import SiteFile
from cloud.risk.levels import RULE_PHASES, risk_level, rule_phase
from cloud.storage.series import reading_row
from protocols.rules.loader import default_pack
from tests.cloud.governance.conftest import GovApp

RISK: dict[str, Any] = {
    "building": "b1",
    "category": "fire",
    "title_zh": "楼道电动车充电",
    "title_en": "E-bikes charging in the corridor",
    "likelihood": 4,
    "impact": 5,
    "device_ids": ["smoke-1", "heat-1"],
    "rule_ids": ["smoke-alarm", "heat-high"],
    "measures": ["no charging in corridors", "charging shed in the yard"],
}


@pytest.mark.parametrize(
    ("likelihood", "impact", "level"),
    [(1, 1, "low"), (2, 2, "low"), (1, 4, "low"), (1, 5, "medium"), (3, 3, "medium"),
     (2, 5, "high"), (4, 4, "high"), (4, 5, "critical"), (5, 5, "critical")],
)  # fmt: skip
def test_level_is_the_five_by_five_matrix(likelihood: int, impact: int, level: str) -> None:
    assert risk_level(likelihood, impact) == level


@pytest.mark.parametrize(("likelihood", "impact"), [(0, 3), (3, 6), (-1, -1)])
def test_level_refuses_ratings_off_the_scale(likelihood: int, impact: int) -> None:
    with pytest.raises(ValueError, match=r"1\.\.5"):
        risk_level(likelihood, impact)


def test_every_shipped_rule_has_a_phase() -> None:
    pack = default_pack()
    assert set(pack.ids) <= set(RULE_PHASES)  # a new rule in the pack gets a phase here
    assert rule_phase(pack.get("smoke-alarm")) == "response"  # type: ignore[arg-type]
    assert rule_phase(pack.get("water-tank-low")) == "preparation"  # type: ignore[arg-type]


def test_unknown_device_and_rule_are_refused_naming_them(
    gov_app: GovApp, demo_site: SiteFile
) -> None:
    gov_app.cloud.import_site(demo_site)
    site = demo_site.site
    body = {**RISK, "site": site, "device_ids": ["smoke-1", "ghost-7", "ghost-8"]}
    answer = gov_app.client.post("/api/gov/risks", json=body, headers=gov_app.headers(Role.MANAGER))
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", "device_ids"]
    assert "ghost-7" in detail["msg"] and "ghost-8" in detail["msg"]
    assert "smoke-1" not in detail["msg"]

    body = {**RISK, "site": site, "rule_ids": ["smoke-alarm", "no-such-rule"]}
    answer = gov_app.client.post("/api/gov/risks", json=body, headers=gov_app.headers(Role.MANAGER))
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["loc"] == ["body", "rule_ids"] and "no-such-rule" in detail["msg"]

    # a device of another site is unknown here too
    body = {**RISK, "site": "elsewhere"}
    answer = gov_app.client.post("/api/gov/risks", json=body, headers=gov_app.headers(Role.MANAGER))
    assert answer.status_code == 422 and "smoke-1" in answer.text
    assert gov_app.call("GET", "/api/gov/risks", Role.MANAGER) == []  # nothing was stored


def test_risk_is_created_levelled_patched_and_audited(gov_app: GovApp, demo_site: SiteFile) -> None:
    gov_app.cloud.import_site(demo_site)
    site = demo_site.site
    risk = gov_app.call("POST", "/api/gov/risks", Role.MANAGER, 201, json={**RISK, "site": site})
    assert risk["level"] == "critical" and risk["phase"] == "prevention"
    assert risk["device_ids"] == ["smoke-1", "heat-1"] and risk["updated_by"] == "manager1"
    rid = risk["id"]

    patched = gov_app.call("PATCH", f"/api/gov/risks/{rid}", Role.MANAGER,
                           json={"likelihood": 2, "status": "mitigating"})  # fmt: skip
    assert patched["level"] == "high" and patched["status"] == "mitigating"
    refused = gov_app.client.patch(f"/api/gov/risks/{rid}", json={"device_ids": ["nope"]},
                                   headers=gov_app.headers(Role.MANAGER))  # fmt: skip
    assert refused.status_code == 422 and "nope" in refused.text
    nulled = gov_app.client.patch(f"/api/gov/risks/{rid}", json={"title_en": None},
                                  headers=gov_app.headers(Role.MANAGER))  # fmt: skip
    assert nulled.status_code == 422 and nulled.json()["detail"][0]["loc"] == ["body", "title_en"]
    unbuilt = gov_app.call("PATCH", f"/api/gov/risks/{rid}", Role.MANAGER,
                           json={"building": None})  # fmt: skip
    assert unbuilt["building"] is None and unbuilt["title_en"] == RISK["title_en"]
    assert gov_app.call("GET", f"/api/gov/risks/{rid}", Role.VIEWER)["device_ids"] == [
        "smoke-1",
        "heat-1",
    ]
    by_site = gov_app.call("GET", "/api/gov/risks", Role.GUARD, params={"site": demo_site.site})
    assert [r["id"] for r in by_site] == [rid]
    assert gov_app.call("GET", "/api/gov/risks", Role.GUARD, params={"building": "b9"}) == []

    gov_app.client.post("/api/gov/risks", json={**RISK, "site": site},
                        headers=gov_app.headers(Role.GUARD))  # fmt: skip
    resident = gov_app.client.get("/api/gov/risks", headers=gov_app.headers(Role.RESIDENT))
    assert resident.status_code == 403
    audit = gov_app.call("GET", "/api/audit", Role.ADMIN)
    actions = [e["action"] for e in (audit if isinstance(audit, list) else audit["items"])]
    assert "gov.risk.create" in actions and "gov.risk.update" in actions


def test_watch_shows_readings_liveness_and_active_alerts(
    gov_app: GovApp, demo_site: SiteFile
) -> None:
    gov_app.cloud.import_site(demo_site)
    site = demo_site.site
    rid = gov_app.call("POST", "/api/gov/risks", Role.MANAGER, 201,
                       json={**RISK, "site": site})["id"]  # fmt: skip
    now = gov_app.clock()
    with Session(gov_app.cloud.app.state.engine) as db:
        for value, ago in ((21.0, 30), (23.5, 5)):
            key = (site, "heat-1", "temperature", "gw1")
            db.add(reading_row(db, key, value, now - timedelta(seconds=ago)))
        spec = alerts.RaiseSpec(site=site, rule_id="smoke-alarm", subject="smoke-1",
                                severity=Severity.CRITICAL, title_en="Smoke", title_zh="烟雾",
                                ts=now)  # fmt: skip
        alert_id = alerts.raise_alert(db, spec, now).alert.id
        db.commit()
    watch = gov_app.call("GET", f"/api/gov/risks/{rid}/watch", Role.MANAGER)
    devices = {d["id"]: d for d in watch["devices"]}
    assert devices["heat-1"]["latest"] == [
        {"metric": "temperature", "value": 23.5, "ts": devices["heat-1"]["latest"][0]["ts"]}
    ]
    assert devices["smoke-1"]["latest"] == [] and devices["smoke-1"]["online"] is None
    rules = {r["id"]: r for r in watch["rules"]}
    assert [a["id"] for a in rules["smoke-alarm"]["active_alerts"]] == [alert_id]
    assert rules["heat-high"]["active_alerts"] == [] and rules["heat-high"]["enabled"]
    assert rules["smoke-alarm"]["phase"] == "response"
    assert "device smoke-1 was never seen" in watch["problems"]
    assert gov_app.client.get("/api/gov/risks/999/watch",
                              headers=gov_app.headers(Role.MANAGER)).status_code == 404  # fmt: skip


def test_phases_count_risks_rules_and_incidents(gov_app: GovApp, demo_site: SiteFile) -> None:
    gov_app.cloud.import_site(demo_site)
    site = demo_site.site
    gov_app.call("POST", "/api/gov/risks", Role.MANAGER, 201, json={**RISK, "site": site})
    gov_app.call("POST", "/api/gov/risks", Role.MANAGER, 201,
                 json={**RISK, "site": site, "phase": "preparation"})  # fmt: skip
    gov_app.call("POST", "/api/gov/incidents", Role.MANAGER, 201,
                 json={"site": site, "title": "drill prep", "category": "fire_hazard",
                       "phase": "preparation"})  # fmt: skip
    out = gov_app.call("GET", "/api/gov/phases", Role.VIEWER, params={"site": site})
    phases = out["phases"]
    assert phases["prevention"]["risks"] == 1 and phases["preparation"]["risks"] == 1
    assert phases["preparation"]["incidents"] == 1 and phases["response"]["incidents"] == 0
    loaded = default_pack()
    assert sum(p["rules"] for p in phases.values()) == len(loaded.ids)
    assert out["rules"]["smoke-alarm"] == "response"
    other = gov_app.call("GET", "/api/gov/phases", Role.VIEWER, params={"site": "other"})
    assert other["phases"]["prevention"]["risks"] == 0


def test_residents_are_staff_only_and_devices_checked(gov_app: GovApp, demo_site: SiteFile) -> None:
    gov_app.cloud.import_site(demo_site)
    body = {"site": demo_site.site, "building": "b1", "unit": "b1-101", "name": "王奶奶",
            "phone": "13800000000", "living_alone": True,
            "activity_devices": ["door-1"]}  # fmt: skip
    made = gov_app.call("POST", "/api/gov/residents", Role.MANAGER, 201, json=body)
    assert made["welfare_after_h"] == 24.0 and made["living_alone"] is True
    bad = gov_app.client.post("/api/gov/residents", headers=gov_app.headers(Role.MANAGER),
                              json={**body, "activity_devices": ["pir-x"]})  # fmt: skip
    assert bad.status_code == 422 and "pir-x" in bad.text
    for role in (Role.RESIDENT, Role.VIEWER):
        assert gov_app.client.get("/api/gov/residents",
                                  headers=gov_app.headers(role)).status_code == 403  # fmt: skip
    listed = gov_app.call("GET", "/api/gov/residents", Role.RESPONDER, params={"living_alone": 1})
    assert [r["name"] for r in listed] == ["王奶奶"]
    patched = gov_app.call("PATCH", f"/api/gov/residents/{made['id']}", Role.MANAGER,
                           json={"welfare_after_h": 12})  # fmt: skip
    assert patched["welfare_after_h"] == 12.0
    audit = gov_app.call("GET", "/api/audit", Role.ADMIN)
    entries = audit if isinstance(audit, list) else audit["items"]
    update = next(e for e in entries if e["action"] == "gov.resident.update")
    assert "13800000000" not in str(update) and "王奶奶" not in str(update)
    url = f"/api/gov/residents/{made['id']}"
    assert gov_app.client.delete(url, headers=gov_app.headers(Role.GUARD)).status_code == 403
    assert gov_app.client.delete(url, headers=gov_app.headers(Role.MANAGER)).status_code == 204
    assert gov_app.call("GET", "/api/gov/residents", Role.MANAGER) == []
    assert gov_app.client.delete(url, headers=gov_app.headers(Role.MANAGER)).status_code == 404

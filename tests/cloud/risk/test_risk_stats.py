"""Statistics from a known set of incidents (SQLite and PostgreSQL), through the route:
counts by category, building and month, SLA per organisation, response-time percentiles;
drills left out unless asked for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from cloud.auth.deps import Role
from cloud.governance import incidents, orgs, whistles
from cloud.governance.models import OrgPatch
from cloud.governance.states import Action
from cloud.risk.stats import percentile
from tests.cloud.governance.conftest import SITE, GovApp, make_orgs

A_TIME = datetime(2026, 10, 5, 10, 0, tzinfo=UTC)
B_TIME = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
C_TIME = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([600.0, 1200.0], 50) == 600.0
    assert percentile([600.0, 1200.0], 90) == 1200.0
    assert percentile([5.0, 1.0, 3.0], 50) == 3.0
    assert percentile([7.0], 90) == 7.0


def _seed(db: Session) -> tuple[int, int]:
    made = make_orgs(db)
    orgs.patch_org(db, made.property, OrgPatch(name_en="Anju Property"))

    def at(base: datetime, seconds: float) -> datetime:
        return base + timedelta(seconds=seconds)

    def new(category: str, when: datetime, **kw: object) -> int:
        return incidents.open_incident(db, site=SITE, title=category, category=category,
                                       source="manual", actor="pm1", now=when, **kw)  # type: ignore[arg-type]  # fmt: skip

    def act(iid: int, action: Action, when: datetime, note: str | None = None) -> None:
        args = incidents.ActionArgs(note=note, reason=note)
        incidents.act(db, iid, action, actor="pm1", args=args, now=when)

    a = new("repair_water", A_TIME, building="b1")  # on time: resolved 30 min into a 1 h SLA
    incidents.dispatch(db, a, org_id=made.property, actor="pm1", due_s=3600, now=A_TIME)
    act(a, Action.ACCEPT, at(A_TIME, 600))
    act(a, Action.ARRIVE, at(A_TIME, 1200))
    act(a, Action.RESOLVE, at(A_TIME, 1800), "pipe fixed")
    b = new("noise", B_TIME, building="b2")  # late: resolved after 2 h of a 1 h SLA
    incidents.dispatch(db, b, org_id=made.property, actor="pm1", due_s=3600, now=B_TIME)
    act(b, Action.ACCEPT, at(B_TIME, 1200))
    (wid,) = whistles.blow(db, b, [made.utilities], reason="capacity", actor="pm1",
                           now=at(B_TIME, 3600))  # fmt: skip
    whistles.report(db, wid, "ack", actor="util1", now=at(B_TIME, 3900))
    act(b, Action.RESOLVE, at(B_TIME, 7200), "talked to the neighbours")
    c = new("repair_water", C_TIME, building="b1")  # late: past its 10 min SLA, unresolved
    incidents.dispatch(db, c, org_id=made.grid_b1, actor="pm1", due_s=600, now=C_TIME)
    new("fire_hazard", at(C_TIME, 86400), building="b1", drill=True)  # a drill's incident
    new("noise", at(C_TIME, 5 * 86400))  # no building, not dispatched
    cancelled = new("sanitation", at(C_TIME, 6 * 86400), building="b3")
    act(cancelled, Action.CANCEL, at(C_TIME, 6 * 86400 + 60), "duplicate")
    return made.property, made.grid_b1


def test_stats_of_a_known_data_set(gov_app: GovApp) -> None:
    with gov_app.cloud.services.sessions.begin() as db:
        prop, grid = _seed(db)
    gov_app.clock.now = NOW
    out = gov_app.call("GET", "/api/gov/stats", Role.VIEWER, params={"site": SITE})
    assert out["drills_excluded"] is True and out["total"] == 4
    assert out["by_category"] == {"noise": 2, "repair_water": 2}
    assert out["by_building"] == {"-": 1, "b1": 2, "b2": 1}
    assert out["by_month"] == {"2026-10": 1, "2026-11": 3}
    sla = {row["org_id"]: row for row in out["sla"]}
    assert sla[prop] | {"org_name": ""} == {"org_id": prop, "org_name": "", "dispatched": 2,
                                            "on_time": 1, "late": 1, "compliance": 0.5,
                                            "org_name_en": "Anju Property"}  # fmt: skip
    assert sla[prop]["org_name"] == "物业公司"
    assert (sla[grid]["org_name"], sla[grid]["org_name_en"]) == ("一号楼网格", None)
    assert (sla[grid]["dispatched"], sla[grid]["late"], sla[grid]["compliance"]) == (1, 1, 0.0)
    times = out["response_times"]
    assert (times["ack_p50_s"], times["ack_p90_s"]) == (600.0, 1200.0)
    assert (times["arrive_p50_s"], times["resolve_p50_s"], times["resolve_p90_s"]) == (
        1200.0,
        1800.0,
        7200.0,
    )
    assert times["whistle_ack_p50_s"] == 300.0 and times["whistle_arrive_p50_s"] is None
    assert (times["acknowledged"], times["arrived"], times["resolved"]) == (2, 1, 2)

    with_drills = gov_app.call("GET", "/api/gov/stats", Role.MANAGER,
                               params={"site": SITE, "drill": 1})  # fmt: skip
    assert with_drills["drills_excluded"] is False and with_drills["total"] == 5
    assert with_drills["by_category"]["fire_hazard"] == 1
    november = gov_app.call("GET", "/api/gov/stats", Role.MANAGER,
                            params={"site": SITE, "since": "2026-11-01T00:00:00"})  # fmt: skip
    assert november["by_month"] == {"2026-11": 3} and november["total"] == 3
    other = gov_app.call("GET", "/api/gov/stats", Role.MANAGER, params={"site": "elsewhere"})
    assert other["total"] == 0 and other["sla"] == []
    denied = gov_app.client.get("/api/gov/stats", headers=gov_app.headers(Role.RESIDENT))
    assert denied.status_code == 403


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01"])
def test_stats_refuse_a_bad_date(gov_app: GovApp, bad: str) -> None:
    answer = gov_app.client.get("/api/gov/stats", params={"since": bad},
                                headers=gov_app.headers(Role.MANAGER))  # fmt: skip
    assert answer.status_code == 422

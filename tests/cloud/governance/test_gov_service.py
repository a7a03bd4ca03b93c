"""The service API other areas build on: open, dispatch, timeline, get, orgs_serving."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.governance import catalogue, incidents
from cloud.governance.errors import Invalid, Refused
from cloud.governance.incidents import ActionArgs
from cloud.governance.states import Action, IllegalTransition, State
from tests.cloud.governance.conftest import SITE, make_orgs

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def test_open_dispatch_timeline_and_get(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        o = make_orgs(db)
        iid = incidents.open_incident(
            db, site=SITE, title="漏水", category="repair_water", source="report",
            actor="res1", reporter="res1", building="b1", now=T0,
        )  # fmt: skip
    with sessions.begin() as db:
        got = incidents.get_incident(db, iid, now=T0)
        assert (got.state, got.source, got.reporter, got.building) == (
            State.REPORTED, "report", "res1", "b1")  # fmt: skip
        assert got.due_at == T0 + timedelta(hours=24)  # the catalogue's deadline
        assert got.dispatched_at is None and not got.overdue
        out = incidents.dispatch(db, iid, org_id=o.property, actor="mgr", assignee="pm1",
                                 due_s=600, now=T0 + timedelta(minutes=1))  # fmt: skip
        assert out.state is State.DISPATCHED and out.org_name == "物业公司"
        assert out.due_at == T0 + timedelta(minutes=11)
    with sessions() as db:
        later = incidents.get_incident(db, iid, now=T0 + timedelta(minutes=12))
        assert later.overdue and later.assignee == "pm1" and later.org_id == o.property
        assert later.dispatched_at == T0 + timedelta(minutes=1)
        lines = incidents.timeline(db, iid)
    assert [(e["actor"], e["action"]) for e in lines] == [("res1", "opened"), ("mgr", "dispatch")]
    assert lines[1]["detail"]["org_id"] == o.property and lines[1]["ts"] > lines[0]["ts"]


def test_open_refuses_unknown_category_and_alerts(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db, pytest.raises(Invalid) as info:
        incidents.open_incident(db, site=SITE, title="x", category="nope", source="manual",
                                actor="mgr")  # fmt: skip
    assert info.value.field == "category" and "repair_water" in info.value.message
    with sessions.begin() as db, pytest.raises(Invalid) as info:
        incidents.open_incident(db, site=SITE, title="x", category="noise", source="manual",
                                actor="mgr", alert_ids=[999])  # fmt: skip
    assert info.value.field == "alert_ids"


def test_dispatch_checks_org_and_assignee(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        o = make_orgs(db)
        iid = incidents.open_incident(db, site=SITE, title="x", category="noise",
                                      source="manual", actor="mgr")  # fmt: skip
    with sessions() as db:
        with pytest.raises(Invalid) as info:
            incidents.dispatch(db, iid, org_id=12345, actor="mgr")
        assert info.value.field == "org_id"
        with pytest.raises(Invalid) as info:
            incidents.dispatch(db, iid, org_id=o.property, actor="mgr", assignee="fire1")
        assert info.value.field == "assignee"


def test_orgs_serving_most_specific_first(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        o = make_orgs(db)
        assert incidents.orgs_serving(db, SITE, "b1", ["grid", "property"]) == [
            o.grid_b1, o.property]  # fmt: skip
        assert incidents.orgs_serving(db, SITE, "b2", ["grid", "property"]) == [o.property]
        assert incidents.orgs_serving(db, SITE, "b1", ["volunteer"]) == []
        assert incidents.orgs_serving(db, "other-site", "b1", ["grid", "property"]) == []


def test_close_waits_for_the_resident(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        o = make_orgs(db)
        iid = incidents.open_incident(db, site=SITE, title="x", category="noise",
                                      source="report", actor="res1", reporter="res1",
                                      confirm_required=True, now=T0)  # fmt: skip
        incidents.dispatch(db, iid, org_id=o.committee, actor="mgr", now=T0)
        incidents.act(db, iid, Action.ACCEPT, actor="lead1", now=T0)
        incidents.act(db, iid, Action.RESOLVE, actor="lead1", args=ActionArgs(note="talked"),
                      now=T0)  # fmt: skip
    with sessions() as db:
        with pytest.raises(Refused) as refused:
            incidents.act(db, iid, Action.CLOSE, actor="mgr", now=T0)
        assert refused.value.conflict and "confirmed" in str(refused.value)
        with pytest.raises(Refused):
            incidents.act(db, iid, Action.CLOSE, actor="mgr", now=T0 + timedelta(days=1),
                          args=ActionArgs(override_reason="unreachable"))  # fmt: skip
        with pytest.raises(Refused):  # only the reporter confirms
            incidents.act(db, iid, Action.CONFIRM, actor="mgr", args=ActionArgs(rating=5))
        out = incidents.act(db, iid, Action.CLOSE, actor="mgr", now=T0 + timedelta(days=8),
                            args=ActionArgs(override_reason="unreachable"))  # fmt: skip
        assert out.state is State.CLOSED
        assert incidents.timeline(db, iid)[-1]["detail"]["override_reason"] == "unreachable"
        with pytest.raises(IllegalTransition):
            incidents.act(db, iid, Action.RESOLVE, actor="mgr", args=ActionArgs(note="x"))


def test_seed_is_idempotent_and_keeps_edits(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        first = len(catalogue.list_items(db))
        assert first == len(catalogue.DEFAULT)
        row = catalogue.item_for(db, "noise")
        row.deadline_s = 999
        assert catalogue.seed(db) == 0
    with sessions.begin() as db:
        assert len(catalogue.list_items(db)) == first
        assert catalogue.item_for(db, "noise").deadline_s == 999

"""Incident changes reach ``/api/stream`` live, only for those who may see the incident: a
resident hears of their own reports only, a responder of incidents dispatched or whistled to
their organisations, managers of everything; nothing for a refused action or a rolled-back
transaction (or savepoint); the deadline loop's automatic whistle is heard too."""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import WebSocketTestSession

from cloud.auth.deps import Role
from cloud.governance import incidents, live
from cloud.governance.incidents import ActionArgs
from cloud.governance.states import Action
from cloud.notify.hub import Hub
from tests.cloud.governance.conftest import GovApp

SITE = "live-site"
M = Role.MANAGER
END = {"type": "alert", "end": True}


def until_end(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    """The incident events received before the END marker (published to everyone)."""
    seen: list[dict[str, Any]] = []
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message == END:
            return seen
        if message["type"] == "incident":
            seen.append(message)


def summary(events: list[dict[str, Any]]) -> list[tuple[int, str, list[str]]]:
    return [(e["id"], e["state"], e["actions"]) for e in events]


def test_incident_changes_reach_those_who_may_see_them(gov_app: GovApp) -> None:
    g = gov_app
    for name, role in [("res1", Role.RESIDENT), ("res2", Role.RESIDENT), ("pm1", Role.RESPONDER),
                       ("other1", Role.RESPONDER), ("fire1", Role.RESPONDER)]:  # fmt: skip
        g.user(name, role)
    prop, _ = g.property_and_fire(SITE, name_en="Property")
    who = ["manager", "res1", "res2", "pm1", "other1", "fire1", "viewer"]
    with ExitStack() as stack:
        ws = {
            name: stack.enter_context(
                g.client.websocket_connect(
                    "/api/stream?topics=incident,alert",
                    headers=g.headers(Role.VIEWER if name == "viewer" else M)
                    if name in ("manager", "viewer")
                    else g.headers(name),
                )
            )
            for name in who
        }
        for sock in ws.values():
            assert sock.receive_json()["type"] == "hello"

        body = {"site": SITE, "category": "fire_hazard", "location": "3F", "description": "电动车"}
        iid = g.call("POST", "/api/gov/reports", "res1", 201, json=body)["id"]
        other = g.call(
            "POST",
            "/api/gov/reports",
            "res2",
            201,
            json=body | {"location": "5F", "category": "noise"},
        )["id"]
        g.call("POST", f"/api/gov/incidents/{iid}/dispatch", M, json={"org_id": prop["id"]})
        refused = g.client.post(f"/api/gov/incidents/{iid}/close", headers=g.headers(M), json={})
        assert refused.status_code == 409  # rolled back: no event
        g.call("POST", f"/api/gov/incidents/{iid}/accept", "pm1")
        g.cloud.services.hub.publish(END)
        got = {name: until_end(sock) for name, sock in ws.items()}

        mine = [(iid, "reported", ["opened"]), (iid, "dispatched", ["dispatch"]),
                (iid, "in_progress", ["accept"])]  # fmt: skip
        everything = [mine[0], (other, "reported", ["opened"]), *mine[1:]]
        assert summary(got["manager"]) == everything
        assert summary(got["viewer"]) == everything
        assert summary(got["res1"]) == mine
        assert summary(got["res2"]) == [(other, "reported", ["opened"])]
        assert summary(got["pm1"]) == mine[1:]  # from the dispatch to their organisation on
        assert got["other1"] == [] and got["fire1"] == []
        for event in got["manager"]:
            assert event["site"] == SITE and event["drill"] is False
            assert not {"roles", "users", "reporter"} & set(event)  # who it is for stays inside

        # The deadline passes: the loop blows the whistle to the fire department by itself.
        g.clock.advance(13 * 3600)
        assert [d.kind for d in g.step()] == ["deadline"]
        g.cloud.services.hub.publish(END)
        got = {name: until_end(sock) for name, sock in ws.items()}
        assert summary(got["fire1"]) == [(iid, "in_progress", ["deadline_missed", "whistle"])]
        assert summary(got["res1"]) == summary(got["fire1"])
        assert [e["id"] for e in got["manager"]] == [iid]
        assert got["res2"] == [] and got["other1"] == []


class Bail(Exception):
    """Rolls a savepoint back in the test."""


@pytest.mark.anyio
async def test_rolled_back_changes_are_not_published(sessions: sessionmaker[Session]) -> None:
    hub = Hub()
    live.install(sessions, hub)

    def new(db: Session, title: str) -> int:
        return incidents.open_incident(db, site=SITE, title=title, category="noise",
                                       source="manual", actor="mgr")  # fmt: skip

    async with hub.subscribe(frozenset({"incident"})) as sub:
        with sessions() as db:
            new(db, "rolled back")
            db.rollback()
            kept = new(db, "kept")
            db.commit()
        with sessions.begin() as db:
            outer = new(db, "outer")
            with pytest.raises(Bail), db.begin_nested():
                with db.begin_nested():  # released into the savepoint around it…
                    incidents.act(db, outer, Action.CANCEL, actor="mgr",
                                  args=ActionArgs(reason="undone"))  # fmt: skip
                raise Bail  # …which is rolled back
            with db.begin_nested():  # released: it stays
                incidents.act(db, outer, Action.COMMENT, actor="mgr",
                              args=ActionArgs(comment="kept"))  # fmt: skip
        with pytest.raises(Bail), sessions.begin() as db:
            new(db, "failed")
            raise Bail
        events = []
        while not sub.queue.empty():
            events.append(sub.queue.get_nowait())
    assert [(e["id"], e["actions"]) for e in events] == [
        (kept, ["opened"]),
        (outer, ["opened", "comment"]),
    ]
    with sessions() as db:
        timeline = incidents.timeline(db, outer)
    assert [(t["action"], t["detail"].get("text")) for t in timeline] == [
        ("opened", None),
        ("comment", "kept"),
    ]

"""Incident changes committed by *another process* on the same database (as the ``--role
rules`` process does when it groups alerts into incidents or blows a whistle) reach this app's
``/api/stream`` as the same ``incident`` events, filtered per viewer; a rolled-back change
reaches nobody; this app's own changes are sent once (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from contextlib import ExitStack
from typing import Any

from sqlalchemy.engine import Engine

from cloud.auth.deps import Role
from cloud.governance.live import LiveIncidents
from tests.cloud.governance.conftest import GovApp, gov_app, make_cloud
from tests.cloud.governance.test_gov_live import END, summary, until_end
from tests.cloud.signals.conftest import run_elsewhere, wait_heard

__all__ = ["gov_app", "make_cloud"]  # the real app on a database of the test's own
SITE = "signals-site"
M = Role.MANAGER
RULES_PROCESS = """
import sys
from datetime import UTC, datetime
from sqlalchemy.orm import sessionmaker
from cloud.db import make_engine
from cloud.governance import incidents, live, whistles
from cloud.governance.incidents import ActionArgs
from cloud.governance.states import Action
from cloud.notify.hub import Hub

engine = make_engine(sys.argv[1])
sessions = sessionmaker(engine, expire_on_commit=False)
live.install(sessions, Hub())  # as every cloud app does (no screens on this one)
step, site = sys.argv[2], sys.argv[3]
with sessions() as db:
    if step == "open":
        iid = incidents.open_incident(db, site=site, title="smoke b1", category="fire_hazard",
                                      source="alert", actor="system")
        db.commit()
        print(iid)
        with sessions() as db2:  # rolled back: nobody hears of it
            incidents.act(db2, iid, Action.COMMENT, actor="system",
                          args=ActionArgs(comment="never"))
            db2.rollback()
    elif step == "dispatch":
        incidents.dispatch(db, int(sys.argv[4]), org_id=int(sys.argv[5]), actor="system")
        db.commit()
    else:
        whistles.blow(db, int(sys.argv[4]), [int(sys.argv[5])], reason="deadline",
                      actor="system", now=datetime.now(UTC), auto=True)
        db.commit()
"""


def rules_process(engine: Engine, *args: str) -> None:
    run_elsewhere(RULES_PROCESS, engine, *args)


def test_changes_from_another_process_reach_the_stream(gov_app: GovApp) -> None:
    g = gov_app
    for name, role in [("res1", Role.RESIDENT), ("pm1", Role.RESPONDER),
                       ("other1", Role.RESPONDER), ("fire1", Role.RESPONDER)]:  # fmt: skip
        g.user(name, role)
    prop, fire = g.property_and_fire(SITE)
    live: LiveIncidents = g.cloud.app.state.gov_live
    engine: Engine = g.cloud.app.state.engine
    who = ["manager", "res1", "pm1", "other1", "fire1"]
    with ExitStack() as stack:
        ws = {
            name: stack.enter_context(
                g.client.websocket_connect(
                    "/api/stream?topics=incident,alert",
                    headers=g.headers(M if name == "manager" else name),
                )
            )
            for name in who
        }
        for sock in ws.values():
            assert sock.receive_json()["type"] == "hello"

        def heard(count: int) -> dict[str, list[dict[str, Any]]]:
            wait_heard(live, count)
            g.cloud.services.hub.publish(END)
            return {name: until_end(sock) for name, sock in ws.items()}

        rules_process(engine, "open", SITE)
        got = heard(1)
        iid = got["manager"][0]["id"]
        assert summary(got["manager"]) == [(iid, "open", ["opened"])]
        assert got["res1"] == got["pm1"] == got["other1"] == got["fire1"] == []

        rules_process(engine, "dispatch", SITE, str(iid), str(prop["id"]))
        got = heard(2)
        dispatched = [(iid, "dispatched", ["dispatch"])]
        assert summary(got["manager"]) == summary(got["pm1"]) == dispatched
        assert got["res1"] == got["other1"] == got["fire1"] == []

        rules_process(engine, "whistle", SITE, str(iid), str(fire["id"]))
        got = heard(3)
        whistled = [(iid, "dispatched", ["whistle"])]
        assert summary(got["manager"]) == summary(got["fire1"]) == summary(got["pm1"]) == whistled
        assert got["res1"] == got["other1"] == []
        for event in got["manager"]:
            assert not {"roles", "users", "reporter"} & set(event)  # who it is for stays inside

        # A change made through this app: published once (directly), not again by its signal.
        g.call("POST", f"/api/gov/incidents/{iid}/comment", M, json={"text": "on it"})
        time.sleep(2.0)  # several polls: its signal has come back by now
        g.cloud.services.hub.publish(END)
        got = {name: until_end(sock) for name, sock in ws.items()}
        assert summary(got["manager"]) == [(iid, "dispatched", ["comment"])]
        assert live.heard == 3

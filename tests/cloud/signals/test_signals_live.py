"""Alert changes and access events published by *another process* on the same database (as a
``--role rules`` process raises alerts and evaluates gate events) reach this app's
``/api/stream`` once, filtered as before: access events to staff only; a rolled-back change
reaches nobody; this app's own alert changes are sent once (SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from sqlalchemy.engine import Engine

from cloud.alerts.views import AlertOut
from cloud.auth.deps import Role
from cloud.notify.channels import notice_of
from cloud.notify.follow import LiveShare
from tests.cloud.api.conftest import Cloud, make_cloud
from tests.cloud.signals.conftest import END, run_elsewhere, until_end, wait_heard

__all__ = ["make_cloud"]  # the real app on a database of the test's own
SITE = "live-site"
RULES_PROCESS = """
import asyncio, sys
from datetime import UTC, datetime
from sqlalchemy.orm import sessionmaker
from cloud.alerts import service
from cloud.alerts.states import Severity, Transition
from cloud.db import make_engine
from cloud.ingest.buffer import Delivery
from cloud.ingest.store import BatchWriter
from cloud.notify import follow
from cloud.notify.channels import notice_of
from cloud.notify.dispatcher import Notifier
from cloud.settings import InAppChannel
from cloud.notify.hub import Hub
from cloud.registry.service import Registry
from protocols.codec import encode, new_id
from protocols.messages import AccessDecision, AccessEvent, AccessKind, AccessMethod
from protocols.topics import Channel, topic

engine = make_engine(sys.argv[1])
sessions = sessionmaker(engine, expire_on_commit=False)
share = follow.install(sessions, Hub())  # as every cloud app does (no screens on this one)
step, site = sys.argv[2], sys.argv[3]
now = datetime.now(UTC)
if step == "raise":
    spec = service.RaiseSpec(site=site, rule_id="smoke", subject="b1-smoke",
                             severity=Severity.CRITICAL, title_en="Smoke", title_zh="烟雾", ts=now)
    with sessions() as db:
        print(service.raise_alert(db, spec, now).alert.id)
        db.commit()
    with sessions() as db:  # rolled back: nobody hears of it
        service.raise_alert(db, service.RaiseSpec(site=site, rule_id="gas", subject="never",
                            severity=Severity.MAJOR, title_en="x", title_zh="x", ts=now), now)
        db.rollback()
elif step in ("repeat", "reraise"):  # the smoke alert raised again (a reraise: cleared first)
    spec = service.RaiseSpec(site=site, rule_id="smoke", subject="b1-smoke",
                             severity=Severity.CRITICAL, title_en="Smoke", title_zh="烟雾", ts=now)
    with sessions() as db:
        if step == "reraise":
            assert service.clear_alert(db, site, "smoke", "b1-smoke", now, now) is not None
            db.commit()
        outcome = service.raise_alert(db, spec, now).outcome
        assert outcome == {"repeat": "repeated", "reraise": "reraised"}[step], outcome
        db.commit()
elif step == "notify":  # the notifier's in-app channel (by role) and a personal notice
    async def notify() -> None:
        notifier = Notifier({"bell": InAppChannel(roles=("manager", "guard"))}, sessions, Hub())
        workers = asyncio.create_task(notifier.run())
        with sessions() as db:
            alert = service.get_alert(db, int(sys.argv[4]))
        notifier.submit(["bell"], notice_of(alert, "raised"))
        await notifier.join()
        notifier.tell(["resident1"], notice_of(alert, "reminder"))
        await notifier.join()
        workers.cancel()
        assert notifier.sent == {"bell": 1, "users": 1}, notifier.sent
    asyncio.run(notify())
elif step == "ack":
    with sessions() as db:
        service.transition(db, int(sys.argv[4]), Transition.ACKNOWLEDGE, "guard1", now)
        db.commit()
else:  # an access event stored by ingest and published by this process's rules runner
    event = AccessEvent(msg_id=new_id(), boot_id=new_id(), seq=3, ts=now, door="door-g",
                        kind=AccessKind.DECISION, decision=AccessDecision.GRANTED,
                        reason="allow_list", method=AccessMethod.FACE, person_id="p1",
                        person_name="Li Lei")
    delivery = Delivery(topic(site, "gw-gate", Channel.ACCESS), encode(event), 1, 1, now)
    stored = BatchWriter(engine, Registry(engine)).write([delivery]).stored
    assert [s.message.msg_id for s in stored] == [event.msg_id]
    follow.announce_access(engine, [event.msg_id])  # what its runner's hook has sent
    print(event.msg_id)
"""


def rules_process(engine: Engine, *args: str) -> None:
    run_elsewhere(RULES_PROCESS, engine, *args)


def summary(events: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    def one(e: dict[str, Any]) -> tuple[str, Any, Any]:
        if e["type"] == "alert":
            return (e["type"], e["change"], e["alert"]["status"])
        if e["type"] == "notification":
            return (e["type"], e["notice"]["kind"], e["notice"]["alert_id"])
        return (e["type"], e["event"]["door"], e["event"]["person_name"])

    return [one(e) for e in events]


def test_alerts_and_access_events_from_another_process_reach_the_stream(
    make_cloud: Callable[..., Cloud],
) -> None:
    cloud = make_cloud(role="ingest")  # the screens' process; the rules run elsewhere
    share: LiveShare = cloud.app.state.live_share
    engine: Engine = cloud.app.state.engine
    roles = [Role.MANAGER, Role.GUARD, Role.RESIDENT]
    with ExitStack() as stack:
        ws = {
            role: stack.enter_context(
                cloud.client.websocket_connect(
                    "/api/stream?topics=alert,access,notification", headers=cloud.auth(role)
                )
            )
            for role in roles
        }
        for sock in ws.values():
            assert sock.receive_json()["type"] == "hello"

        def heard(count: int) -> dict[Role, list[dict[str, Any]]]:
            wait_heard(share, count)
            cloud.services.hub.publish(END)
            return {role: until_end(sock) for role, sock in ws.items()}

        rules_process(engine, "raise", SITE)
        got = heard(1)
        raised = [("alert", "created", "open")]
        assert summary(got[Role.MANAGER]) == summary(got[Role.RESIDENT]) == raised
        alert = got[Role.GUARD][0]["alert"]
        assert (alert["site"], alert["rule_id"], alert["subject"]) == (SITE, "smoke", "b1-smoke")

        rules_process(engine, "ack", SITE, str(alert["id"]))
        got = heard(2)
        assert summary(got[Role.GUARD]) == [("alert", "acknowledge", "acknowledged")]
        assert got[Role.GUARD][0]["alert"]["acknowledged_by"] == "guard1"

        rules_process(engine, "notify", SITE, str(alert["id"]))
        got = heard(4)  # one event per notice, however many recipients it was stored for
        bell = ("notification", "raised", alert["id"])
        assert summary(got[Role.MANAGER]) == summary(got[Role.GUARD]) == [bell]
        assert summary(got[Role.RESIDENT]) == [("notification", "reminder", alert["id"])]
        assert got[Role.MANAGER][0]["roles"] == ["manager", "guard"]
        notice = got[Role.GUARD][0]["notice"]
        assert (notice["site"], notice["subject"], notice["title_zh"]) == (SITE, "b1-smoke", "烟雾")

        rules_process(engine, "access", SITE)
        got = heard(5)
        gate = [("access", "door-g", "Li Lei")]
        assert summary(got[Role.MANAGER]) == summary(got[Role.GUARD]) == gate
        assert got[Role.RESIDENT] == []  # access events go to staff only
        access = got[Role.GUARD][0]
        assert (access["site"], access["gateway"], access["event"]["seq"]) == (
            SITE,
            "gw-gate",
            3,
        )

        # Changes made by this app: published once (directly), not again by their signals.
        resolved = cloud.post(f"/api/alerts/{alert['id']}/resolve", json={"note": "false alarm"})
        notice = notice_of(AlertOut.model_validate(resolved.json()), "resolved")
        cloud.services.notifier.tell(["resident1"], notice)
        time.sleep(2.0)  # several polls: their signals have come back by now
        cloud.services.hub.publish(END)
        got = {role: until_end(sock) for role, sock in ws.items()}
        assert summary(got[Role.MANAGER]) == [("alert", "resolve", "resolved")]
        assert summary(got[Role.RESIDENT]) == [
            ("alert", "resolve", "resolved"),
            ("notification", "resolved", alert["id"]),
        ]
        assert share.heard == 5

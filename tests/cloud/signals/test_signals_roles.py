"""End to end on real ``linli cloud run`` processes: a ``--role rules`` process raises a smoke
alarm and groups it into an incident; the screens connected to the *other* process's
``/api/stream`` (here the ``--role ingest`` process's) get the ``alert`` and ``incident`` events,
and the gate's ``access`` event its runner evaluated, at once, not at their slow poll
(PostgreSQL, mosquitto, split ingest)."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from websockets.sync.client import connect

from cloud.auth import service as accounts
from cloud.auth.deps import Role
from linli.services import Mosquitto
from protocols.codec import encode, new_id
from protocols.messages import AccessDecision, AccessEvent, AccessKind, AccessMethod
from protocols.topics import Channel, topic
from tests.chaos.chaos_support import wait_until
from tests.cloud.scaleout.test_rules_feed_scaleout import (
    ALARM,
    STEPS,
    cloud_process,
    environment,
    import_site,
    publish,
    ready,
    smoke_frames,
)

GATE = AccessEvent(
    msg_id=new_id(), boot_id=new_id(), seq=0, ts=datetime.now(UTC), door="door-g",
    kind=AccessKind.DECISION, decision=AccessDecision.GRANTED, reason="allow_list",
    method=AccessMethod.FACE, person_id="p1", person_name="Li Lei",
)  # fmt: skip
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.timeout(300)]


def manager_token(engine: Engine) -> str:
    with Session(engine) as db:
        user = accounts.create_user(db, "manager1", "correct horse battery", Role.MANAGER)
        token, _ = accounts.issue_token(db, user, 3600)
        db.commit()
    return token


def test_the_rules_process_alert_incident_and_gate_event_reach_another_stream(
    pg_engine: Engine, pg_url: str, mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    import_site(pg_engine, site)
    token = manager_token(pg_engine)
    common = environment(pg_url, mosquitto.port, site, tmp_path)
    rules, rules_port = cloud_process(
        tmp_path, "rules", {**common, "LINLI_MQTT_CLIENT_ID": f"rules-{site}"}, "--role", "rules"
    )
    ingest, api_port = cloud_process(
        tmp_path, "ingest", {**common, "LINLI_MQTT_CLIENT_ID": f"ingest-{site}"}, "--role", "ingest"
    )
    children = [rules, ingest]
    try:
        for child in children:
            child.start()
        ready(rules, rules_port)
        ready(ingest, api_port)
        url = f"ws://127.0.0.1:{api_port}/api/stream?topics=incident,alert,access&token={token}"
        events: list[dict[str, Any]] = []

        def seen(kind: str) -> list[dict[str, Any]]:
            if kind == "alert":  # the smoke alarm raised (the pack's rule)
                smoke = ("smoke-alarm", "created")
                alerts = [e for e in events if e["type"] == "alert"]
                return [e for e in alerts if (e["alert"]["rule_id"], e["change"]) == smoke]
            return [e for e in events if e["type"] == kind]

        with connect(url, open_timeout=30) as ws:
            assert json.loads(ws.recv(timeout=30))["type"] == "hello"
            time.sleep(1.0)  # the broker applies the SUBSCRIBEs
            frames = smoke_frames(site, [i in ALARM for i in range(STEPS)])
            publish(mosquitto.port, [*frames, (topic(site, "gw1", Channel.ACCESS), encode(GATE))])
            deadline = time.monotonic() + 120
            while not (seen("incident") and seen("alert") and seen("access")):
                try:
                    events.append(
                        json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                    )
                except TimeoutError:
                    wait_until(lambda: False, 0, f"on the stream only {events}", *children)
            with contextlib.suppress(TimeoutError):  # anything sent twice would come meanwhile
                while True:
                    events.append(json.loads(ws.recv(timeout=2.0)))
        event = seen("incident")[0]
        assert event["site"] == site and "opened" in event["actions"], event
        assert not {"roles", "users", "reporter"} & set(event)  # the audience stays inside
        raised = seen("alert")
        assert len(raised) == 1, events  # once
        assert raised[0]["alert"]["site"] == site, raised
        gate = seen("access")  # evaluated by the rules process's runner, published there
        assert [(e["site"], e["event"]["msg_id"]) for e in gate] == [(site, GATE.msg_id)], events
        assert gate[0]["event"]["person_name"] == "Li Lei"
    finally:
        for child in children:
            child.stop()

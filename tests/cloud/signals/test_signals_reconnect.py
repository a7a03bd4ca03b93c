"""PostgreSQL: a change whose signal never reached this app — it committed, with a lower id
than one already heard, while the listener was not connected — is published when the listener
reconnects; nothing from before the app started is replayed.

PostgreSQL takes a row's id at insert and commits it later, so rows commit out of id order
(SQLite holds the database from a writer's first write to its commit: ids commit in order, and
these tests do not apply to it). The late writer here announces nothing at all (a plain
sessionmaker): the follower can only find its row by looking below the last id it heard."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service
from cloud.alerts.states import Severity
from cloud.auth.deps import Role
from cloud.db import create_schema, make_engine
from cloud.governance import incidents
from cloud.governance.live import LiveIncidents
from cloud.notify.follow import LiveShare
from tests.cloud.api.conftest import Cloud, make_cloud
from tests.cloud.governance.conftest import GovApp, gov_app
from tests.cloud.signals import test_signals_incidents as other_incidents
from tests.cloud.signals import test_signals_live as other_alerts
from tests.cloud.signals.conftest import END, heard_on, until_end

__all__ = ["gov_app", "make_cloud"]


@pytest.fixture
def db_url(pg_url: str) -> str:
    return pg_url  # PostgreSQL only (see the module docstring)


def drop_listeners(engine: Engine) -> None:
    """Terminate the app's LISTEN connections (as a network blip or a server restart would)."""
    with engine.begin() as conn:
        dropped = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %' "
                "AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    assert dropped >= 1


def raise_quietly(db: Session, subject: str) -> None:
    """Raise an alert on a site of its own (the other process's writes never wait for it)."""
    now = datetime.now(UTC)
    spec = service.RaiseSpec(
        site="quiet-site",
        rule_id="gas",
        subject=subject,
        severity=Severity.MAJOR,
        title_en="Gas",
        title_zh="燃气",
        ts=now,
    )
    assert service.raise_alert(db, spec, now).outcome == "created"
    db.flush()


def test_an_alert_committed_late_while_the_listener_was_away_is_published(
    db_url: str, make_cloud: Callable[..., Cloud]
) -> None:
    before = make_engine(db_url)
    create_schema(before)
    with Session(before) as db:  # before the app started: never replayed
        raise_quietly(db, "before-start")
        db.commit()
    before.dispose()
    cloud = make_cloud(role="ingest")
    share: LiveShare = cloud.app.state.live_share
    engine: Engine = cloud.app.state.engine
    quiet = sessionmaker(engine)  # no signals: as if its notification was lost
    with cloud.client.websocket_connect(
        "/api/stream?topics=alert", headers=cloud.auth(Role.MANAGER)
    ) as ws:
        assert ws.receive_json()["type"] == "hello"

        heard = partial(heard_on, share, cloud.services.hub, ws)

        with quiet() as late:
            raise_quietly(late, "late")  # its audit line takes an id now, commits later
            other_alerts.rules_process(engine, "raise", other_alerts.SITE)  # a higher id
            [first] = heard(1)
            assert first["alert"]["subject"] == "b1-smoke"
            drop_listeners(engine)
            late.commit()  # while the listener is away (it waits ≥ 0.25 s to reconnect)
        [missed] = heard(2)
        assert (missed["change"], missed["alert"]["subject"]) == ("created", "late")
        time.sleep(1.5)  # nothing else: not "before-start", not "late" again
        cloud.services.hub.publish(END)
        assert until_end(ws) == []
        assert share.heard == 2


def test_an_incident_change_committed_late_while_the_listener_was_away_is_published(
    gov_app: GovApp,
) -> None:
    g = gov_app
    live: LiveIncidents = g.cloud.app.state.gov_live
    engine: Engine = g.cloud.app.state.engine
    quiet = sessionmaker(engine)
    with g.client.websocket_connect(
        "/api/stream?topics=incident,alert", headers=g.headers(Role.MANAGER)
    ) as ws:
        assert ws.receive_json()["type"] == "hello"

        heard = partial(heard_on, live, g.cloud.services.hub, ws)

        with quiet() as late:
            late_id = incidents.open_incident(
                late, site="quiet-site", title="late", category="fire_hazard",
                source="alert", actor="system",
            )  # fmt: skip
            late.flush()
            other_incidents.rules_process(engine, "open", other_incidents.SITE)
            [first] = heard(1)
            assert first["id"] != late_id
            drop_listeners(engine)
            late.commit()
        [missed] = heard(2)
        assert (missed["id"], missed["actions"]) == (late_id, ["opened"])
        time.sleep(1.5)
        g.cloud.services.hub.publish(END)
        assert until_end(ws) == []
        assert live.heard == 2

"""A live cloud (uvicorn, real MQTT) and an edge agent running a gate, on the test's broker."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import create_app
from cloud.auth import service
from cloud.auth.deps import Role
from cloud.db import create_schema, make_engine
from cloud.faces.router import GATE_URL_ENV, POLL_STATE
from cloud.gate.sync import GateSync
from cloud.registry.tables import Gateway, Site
from cloud.settings import Settings
from cloud.storage.tables import AccessEventRow
from dashboards.tables import VisitorPass
from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from edge.testing import edge_config, running, until
from linli.services import Mosquitto
from protocols.codec import new_id
from tests.dashboards.screens_support import LiveServer

NO_POLL_S = 3600.0


@dataclass
class LiveCloud:
    url: str
    db_url: str
    client: httpx.Client
    sync: GateSync
    app: FastAPI


@contextmanager
def serve_cloud(
    db_url: str, broker: Mosquitto, site: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveCloud]:
    settings = Settings(
        db_url=db_url,
        mqtt_enabled=True,
        mqtt_port=broker.port,
        mqtt_client_id=f"cloud-{site}",
        tick_s=0.5,
        stale_after_s=3600.0,
    )
    app = create_app(settings)
    # Changes must arrive by notification (writes, ingest's hook), never by the safety poll.
    setattr(app.state, POLL_STATE, NO_POLL_S)
    server = LiveServer(app)
    monkeypatch.setenv(GATE_URL_ENV, server.url)
    with server:
        sync: GateSync = app.state.gate_sync
        assert sync.poll_s == NO_POLL_S
        with Session(app.state.engine) as db:
            user = service.create_user(db, "guard1", "correct horse battery", Role.GUARD)
            token, _ = service.issue_token(db, user, 3600)
            db.commit()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            yield LiveCloud(server.url, db_url, client, sync, app)


@pytest.fixture
def live_cloud(
    tmp_path: Path, mosquitto: Mosquitto, site: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveCloud]:
    """On SQLite."""
    with serve_cloud(f"sqlite:///{tmp_path / 'cloud.db'}", mosquitto, site, monkeypatch) as cloud:
        yield cloud


@pytest.fixture
def live_cloud_pg(
    pg_url: str, mosquitto: Mosquitto, site: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[LiveCloud]:
    """On PostgreSQL (where writers in other processes wake the sync by NOTIFY)."""
    with serve_cloud(pg_url, mosquitto, site, monkeypatch) as cloud:
        yield cloud


@pytest.fixture
def site_db(tmp_path: Path, site: str) -> Iterator[sessionmaker[Session]]:
    """Sessions of a migrated SQLite cloud database holding the site and its gateway ``gw1``
    (the engine: ``sessions.kw["bind"]``)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    create_schema(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions() as db:
        db.add(Site(id=site))
        db.flush()
        db.add(Gateway(site=site, id="gw1"))
        db.commit()
    try:
        yield sessions
    finally:
        engine.dispose()


def visitor_pass(site: str | None, now: datetime, **changes: Any) -> VisitorPass:
    """A dashboards visitor pass row: one use, valid from ``now`` for an hour."""
    fields: dict[str, Any] = {
        "code": "code-123456",
        "site": site,
        "visitor_name": "v",
        "doors": [],
        "valid_from": now,
        "valid_until": now + timedelta(hours=1),
        "max_uses": 1,
        "uses": 0,
        "created_by": "guard1",
        "created_at": now,
        "detail": {},
    }
    return VisitorPass(**(fields | changes))


def access_row(
    site: str,
    pass_id: str | None,
    *,
    reason: str = "visitor_pass",
    decision: str = "granted",
    gateway: str = "gwa",
) -> AccessEventRow:
    """An access event as ingest stores it (by default a gateway's grant of a visitor pass)."""
    return AccessEventRow(
        msg_id=new_id(),
        site=site,
        gateway=gateway,
        door="main",
        kind="decision",
        decision=decision,
        reason=reason,
        method="qr",
        attrs={} if pass_id is None else {"pass_id": pass_id},
        ts=datetime.now(UTC),
        historical=False,
    )


def gate_edge_config(
    tmp_path: Path, broker: Mosquitto, site: str, people: dict[str, Any], gateway: str = "gw1"
) -> EdgeConfig:
    """An edge with one gate (door ``main``, liveness off: still test photos) and no camera
    frames of its own (an empty folder): the tests hand frames and credentials to the gate."""
    frames = tmp_path / "no-frames"
    frames.mkdir(exist_ok=True)
    return edge_config(
        tmp_path,
        broker,
        site,
        gateway,
        actuators={"doors": [{"id": "main", "open_seconds": 5}]},
        gates=[
            {
                "door": "main",
                "camera": "cam1",
                "source": str(frames),
                "policy": {
                    "doors": {"main": {"door": "main", "liveness": False}},
                    "people": people,
                },
            }
        ],
    )


@asynccontextmanager
async def running_gate(
    tmp_path: Path, broker: Mosquitto, site: str, gateway: str = "gw1"
) -> AsyncIterator[EdgeAgent]:
    """An edge agent with one gate and nobody on its allow list (:func:`gate_edge_config`),
    running, its gate started."""
    agent = EdgeAgent(gate_edge_config(tmp_path, broker, site, people={}, gateway=gateway))
    async with running(agent):
        await until(lambda: agent.gates[0]._loop is not None, what="gate started")
        yield agent

"""A live cloud (uvicorn, real MQTT) and an edge agent running a gate, on the test's broker."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.auth import service
from cloud.auth.deps import Role
from cloud.faces.router import GATE_URL_ENV, POLL_STATE
from cloud.gate.sync import GateSync
from cloud.settings import Settings
from cloud.storage.tables import AccessEventRow
from edge.config import EdgeConfig
from edge.testing import edge_config
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

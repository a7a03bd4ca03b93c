"""An in-process cloud for end-to-end scenario checks: the real app (ingest, rules, alerts, API)
on a fresh SQLite database and the session's real mosquitto, in the test's own event loop."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.api.services import Services
from cloud.auth import service as accounts
from cloud.auth.deps import Role
from cloud.registry.sitefile import SiteFile
from cloud.settings import Settings
from linli.services import Mosquitto
from simulators.cloudclient import CloudClient


@dataclass
class InProcessCloud:
    services: Services
    client: CloudClient
    token: str
    app: FastAPI

    def import_site(self, sitefile: SiteFile) -> None:
        with self.services.sessions.begin() as db:
            self.services.registry.import_site(db, sitefile)

    async def tick(self, sim_now: float) -> None:
        """Drive the rules runner's timers with the simulated clock.

        First let the cloud evaluate what has reached it: at speed 360 a five-minute no-data
        window is under a second of wall time, and a busy machine that holds a batch in ingest
        that long would otherwise read as five silent minutes of every gateway.
        """
        runner, ingest = self.services.runner, self.services.ingest
        assert runner is not None and ingest is not None
        for _ in range(250):  # 5 s at most: a stuck pipeline must still let the run go on
            if ingest.settled:
                break
            await asyncio.sleep(0.02)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await runner.drained()
        await runner.tick(datetime.fromtimestamp(sim_now, UTC))


@contextlib.asynccontextmanager
async def in_process_cloud(
    mosquitto: Mosquitto, workdir: Path, **settings: Any
) -> AsyncIterator[InProcessCloud]:
    """The real cloud app's lifespan in this event loop; API calls go through ASGI."""
    config = Settings(
        db_url=f"sqlite:///{workdir / 'cloud.db'}",
        mqtt_port=mosquitto.port,
        mqtt_client_id=f"sim-cloud-{uuid.uuid4().hex[:8]}",
        static_dashboards=False,
        tick_s=0.5,
        **settings,
    )
    app = create_app(config)
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        await services.ingest_ready.wait()
        with Session(services.engine) as db:
            user = accounts.create_user(db, "simcheck", "correct horse battery staple", Role.VIEWER)
            token, _ = accounts.issue_token(db, user, 3600)
            db.commit()
        transport = httpx.ASGITransport(app=app)
        async with CloudClient("http://cloud", token, transport=transport) as client:
            yield InProcessCloud(services, client, token, app)


@pytest.fixture
async def cloud(mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[InProcessCloud]:
    async with in_process_cloud(mosquitto, tmp_path) as c:
        yield c

"""The first slice, end to end, with the real components and nothing in between faked:

simulated smoke detector → edge agent (driver → outbox → paho uplink) → mosquitto → cloud ingest
→ rule from the default pack → alert stored in SQLite → ``GET /api/alerts`` over HTTP.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy.orm import Session

from cloud.api.app import create_app
from cloud.auth.deps import Role
from cloud.auth.service import create_user
from cloud.db import create_schema, make_engine
from cloud.registry.service import Registry
from cloud.registry.sitefile import load_site_file
from edge.agent import EdgeAgent
from edge.config import parse_config
from edge.drivers.simulated import SimulatedDriver
from linli.services import Mosquitto, free_port

SITE_YAML = """
site: {site}
name: Slice test
buildings:
  - id: b1
    floors: [{{id: b1-f1, level: 1}}]
zones:
  - {{id: b1-f1, building: b1, floor: b1-f1}}
gateways:
  - id: gw1
    building: b1
    devices:
      - {{id: smoke-1, kind: smoke, building: b1, floor: b1-f1, zone: b1-f1}}
"""


def _prepare(tmp_path: Path, site: str) -> str:
    site_file = tmp_path / "site.yaml"
    site_file.write_text(SITE_YAML.format(site=site))
    db_url = f"sqlite:///{tmp_path / 'cloud.db'}"
    engine = make_engine(db_url)
    create_schema(engine)
    with Session(engine) as session, session.begin():
        Registry(engine).import_site(session, load_site_file(site_file))
        create_user(session, "manager1", "correct horse battery", Role.MANAGER)
    engine.dispose()
    return db_url


@pytest.mark.anyio
async def test_smoke_detector_to_alert_on_api(
    mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    from cloud.settings import Settings

    db_url = await asyncio.to_thread(_prepare, tmp_path, site)
    port = free_port()
    settings = Settings(
        db_url=db_url,
        mqtt_host="127.0.0.1",
        mqtt_port=mosquitto.port,
        mqtt_client_id=f"cloud-{site}",
        static_dashboards=False,
    )
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    config = parse_config(
        {
            "site": site,
            "gateway": "gw1",
            "state_dir": str(tmp_path / "edge"),
            "broker": {"host": "127.0.0.1", "port": mosquitto.port},
            "drivers": [
                {
                    "type": "simulated",
                    "name": "sim",
                    "interval": 0.2,
                    "devices": [{"id": "smoke-1", "kind": "smoke", "seed": 1}],
                }
            ],
        },
        "slice",
    )
    async with asyncio.TaskGroup() as tg:
        serving = tg.create_task(server.serve())
        while not server.started:
            assert not serving.done(), "cloud failed to start"
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            login = await client.post(
                "/api/auth/login",
                json={"username": "manager1", "password": "correct horse battery"},
            )
            assert login.status_code == 200, login.text
            headers = {"Authorization": f"Bearer {login.json()['token']}"}
            deadline = time.monotonic() + 30
            while (await client.get("/ready")).status_code != 200:
                assert time.monotonic() < deadline, "cloud not ready (ingest not subscribed)"
                await asyncio.sleep(0.1)
            before = (await client.get("/api/alerts", headers=headers)).json()
            assert before["items"] == [] if isinstance(before, dict) else before == []

            agent = EdgeAgent(config)
            async with agent:
                running = tg.create_task(agent.run())
                while not agent.uplink.connected:
                    assert time.monotonic() < deadline, "edge agent did not connect"
                    await asyncio.sleep(0.05)
                driver = agent.drivers[0]
                assert isinstance(driver, SimulatedDriver)
                driver.virtual["smoke-1"].force("smoke", True)
                alert = None
                deadline = time.monotonic() + 30
                while alert is None and time.monotonic() < deadline:
                    resp = await client.get("/api/alerts", headers=headers)
                    assert resp.status_code == 200
                    body = resp.json()
                    items = body["items"] if isinstance(body, dict) else body
                    alert = next((a for a in items if a["rule_id"] == "smoke-alarm"), None)
                    await asyncio.sleep(0.2)
                agent.stop()
                await running
        server.should_exit = True
    assert alert is not None, "no smoke alert within 30 s"
    assert alert["site"] == site
    assert alert["device"] == "smoke-1"
    assert alert["severity"] == "critical"
    assert alert["status"] == "open"

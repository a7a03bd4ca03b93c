"""On SQLite, ``linli faces enroll … --publish`` run as its own process against the running
cloud's database file wakes the cloud's gate sync (a signal counter, cloud/signals.py): the
edge gets the new gallery version with the safety poll an hour away. (PostgreSQL:
tests/cloud/gate/test_gate_gallery_notify.py.)"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.testing import running, until
from linli.services import Mosquitto
from tests.cloud.gate.conftest import NO_POLL_S, LiveCloud, gate_edge_config, live_cloud
from tests.cloud.gate.test_gate_gallery_notify import faces_cli

__all__ = ["live_cloud"]  # the cloud on SQLite, served by uvicorn, with the poll an hour away
pytestmark = [pytest.mark.anyio, pytest.mark.faces]


async def test_faces_cli_on_sqlite_wakes_the_running_cloud(
    tmp_path: Path, mosquitto: Mosquitto, site: str, live_cloud: LiveCloud, shared_data: Path
) -> None:
    cloud = live_cloud
    assert cloud.db_url.startswith("sqlite") and cloud.sync.poll_s == NO_POLL_S
    photos = [str(shared_data / "faces" / "enroll" / f) for f in ("obama_1.jpg", "biden_1.jpg")]
    agent = EdgeAgent(gate_edge_config(tmp_path, mosquitto, site, people={}))
    async with running(agent):
        gate = agent.gates[0].gate
        await until(lambda: agent.gates[0]._loop is not None, what="gate started")
        enrol = ["enroll", *photos, "--db", cloud.db_url, "--consent", "--consent-by", "desk"]
        await asyncio.to_thread(faces_cli, *enrol, "--no-progress", "--publish")
        await until(lambda: gate.pipeline.gallery.version >= 1, within=60, what="gallery v1")
        assert set(gate.pipeline.gallery.person_ids) == {"obama", "biden"}
    assert cloud.sync.wakes >= 1

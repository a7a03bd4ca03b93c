"""On PostgreSQL, enrolment and erasure made by the faces CLI in *another process* wake the
running cloud's gate sync (NOTIFY): the edge gets each new gallery version with no poll."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.testing import running, until
from linli.services import Mosquitto
from tests.cloud.gate.conftest import NO_POLL_S, LiveCloud, gate_edge_config

pytestmark = [pytest.mark.anyio, pytest.mark.faces]


def faces_cli(*args: str) -> None:
    """``linli faces …`` as its own process (as an operator would run it)."""
    done = subprocess.run(
        [sys.executable, "-m", "linli", "faces", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]


async def test_cli_in_another_process_wakes_the_sync(
    tmp_path: Path, mosquitto: Mosquitto, site: str, live_cloud_pg: LiveCloud, shared_data: Path
) -> None:
    cloud = live_cloud_pg
    assert cloud.sync.poll_s == NO_POLL_S
    faces = shared_data / "faces"
    agent = EdgeAgent(gate_edge_config(tmp_path, mosquitto, site, people={}))
    db = ["--db", cloud.db_url]
    async with running(agent):
        gate = agent.gates[0].gate
        await until(lambda: agent.gates[0]._loop is not None, what="gate started")
        photos = [str(faces / "enroll" / f) for f in ("obama_1.jpg", "biden_1.jpg")]
        enrol = ["enroll", *photos, *db, "--consent", "--consent-by", "desk", "--no-progress"]
        await asyncio.to_thread(faces_cli, *enrol, "--publish")
        await until(lambda: gate.pipeline.gallery.version >= 1, within=60, what="gallery v1")
        assert set(gate.pipeline.gallery.person_ids) == {"obama", "biden"}

        await asyncio.to_thread(faces_cli, "erase", "obama", *db, "--by", "dpo", "--publish")
        await until(lambda: gate.pipeline.gallery.version >= 2, within=60, what="gallery v2")
        assert set(gate.pipeline.gallery.person_ids) == {"biden"}

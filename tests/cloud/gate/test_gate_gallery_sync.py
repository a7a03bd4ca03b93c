"""Enrolment and erasure in the cloud reach the edge's gallery through ``gallery.sync``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud.db import make_engine
from cloud.faces.dbstore import DbGallery
from edge.agent import EdgeAgent
from edge.gate import bundle as bundles
from edge.gate.cli import main as faces_main
from edge.gate.faces import letterbox, load_rgb
from edge.gate.gate import Gate
from edge.testing import running, until
from linli.services import Mosquitto
from protocols.messages import AccessDecision, AccessEvent
from tests.cloud.gate.conftest import LiveCloud, gate_edge_config

pytestmark = [pytest.mark.anyio, pytest.mark.faces]


def show(gate: Gate, photo: Path, frames: int = 8) -> list[AccessEvent]:
    """The same photo in front of the camera for ``frames`` frames (liveness is off here)."""
    image = letterbox(load_rgb(photo))
    start = datetime.now(UTC)
    events: list[AccessEvent] = []
    for i in range(frames):
        events += gate.frame(image.copy(), start + timedelta(seconds=i / 10))
    return events


async def test_enrol_and_erase_reach_the_edge(
    tmp_path: Path, mosquitto: Mosquitto, site: str, live_cloud: LiveCloud, shared_data: Path
) -> None:
    faces = shared_data / "faces"
    people = {"obama": {"person_id": "obama"}, "biden": {"person_id": "biden"}}
    agent = EdgeAgent(gate_edge_config(tmp_path, mosquitto, site, people=people))
    db = ["--db", live_cloud.db_url]
    async with running(agent):
        gate = agent.gates[0].gate
        assert gate.pipeline.gallery.version == 0 and len(gate.pipeline.gallery) == 0
        enrol = ["enroll", str(faces / "enroll"), *db, "--consent", "--consent-by", "desk"]
        assert await asyncio.to_thread(faces_main, [*enrol, "--publish", "--no-progress"]) == 0
        await until(lambda: gate.pipeline.gallery.version >= 1, within=60, what="gallery v1")
        assert {"obama", "biden"} <= set(gate.pipeline.gallery.person_ids)
        seen = await asyncio.to_thread(show, gate, faces / "probe" / "obama.jpg")
        granted = [e for e in seen if e.decision is AccessDecision.GRANTED]
        assert [e.person_id for e in granted] == ["obama"]

        erase = ["erase", "obama", *db, "--by", "dpo", "--publish"]
        assert await asyncio.to_thread(faces_main, erase) == 0
        await until(lambda: gate.pipeline.gallery.version >= 2, within=60, what="gallery v2")
        assert "obama" not in gate.pipeline.gallery.person_ids
        assert "biden" in gate.pipeline.gallery.person_ids
        kept = bundles.parse((agent.config.state_dir / "gallery.json").read_bytes())
        assert kept.version == 2 and "obama" in kept.erased
        assert "obama" not in {p.person_id for p in kept.people}
        later = await asyncio.to_thread(show, gate, faces / "probe" / "obama.jpg", 10)
        assert not [e for e in later if e.decision is AccessDecision.GRANTED]

    # Thumbnails still expire by the retention policy (erasure removed obama's already).
    engine = make_engine(live_cloud.db_url)
    try:
        store = DbGallery(engine)
        left = store.thumbnails()
        assert left > 0
        assert store.purge_thumbnails(datetime.now(UTC) + timedelta(days=365)) == left
        assert store.thumbnails() == 0
    finally:
        engine.dispose()

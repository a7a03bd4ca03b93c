"""Gate settings (as they would sit in edge.yaml) and building gates for the agent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from edge.agent import EdgeAgent
from edge.gate.bundle import Bundle
from edge.gate.faces import FaceEngine
from edge.gate.settings import GateSettings, build_services
from edge.testing import edge_config

pytestmark = pytest.mark.faces

YAML = """
- door: lobby_in
  camera: cam_lobby
  source: rtsp://10.0.0.5/stream1
  policy:
    doors: {lobby_in: {door: lobby_in, liveness: true, direction: in, passback_area: lobby}}
    people: {alice: {person_id: alice, credentials: {card: "04A1B2"}}}
  pipeline: {upsample: 0, roi: [80, 0, 480, 480]}
- door: lobby_out
  camera: cam_exit
  source: "0"
  policy:
    doors: {lobby_out: {door: lobby_out, direction: out, passback_area: lobby}}
"""


@dataclass
class NoBroker:
    port: int = 1  # the agent is built, never opened: nothing connects


def parse(data: Any) -> list[GateSettings]:
    return [GateSettings.model_validate(item) for item in data]


def test_settings_from_yaml() -> None:
    lobby_in, lobby_out = parse(yaml.safe_load(YAML))
    assert lobby_in.pipeline.roi == (80, 0, 480, 480)
    assert lobby_in.policy.doors["lobby_in"].passback_area == "lobby"
    assert lobby_out.source == "0"


def test_bad_settings_name_the_field() -> None:
    data = yaml.safe_load(YAML)
    data[0]["pipeline"]["upsampel"] = 1
    with pytest.raises(ValidationError, match="upsampel"):
        parse(data)
    data = yaml.safe_load(YAML)
    data[1]["door"] = "garage"
    with pytest.raises(ValidationError, match="no entry for door 'garage'"):
        parse(data)
    data = yaml.safe_load(YAML)
    data[0]["policy"]["doors"]["lobby_in"]["methods"] = ["face"]
    with pytest.raises(ValidationError, match="non-face"):
        parse(data)


def test_gates_share_one_gallery_and_one_sync_handler(
    tmp_path: Path, engine: FaceEngine, bundle: Bundle
) -> None:
    cache = tmp_path / "gallery.json"
    stored = Bundle(version=3, created_at=datetime.now(UTC), people=bundle.people)
    cache.write_bytes(stored.to_bytes())
    agent = EdgeAgent(edge_config(tmp_path, NoBroker(), "site1"))
    services = build_services(
        agent, parse(yaml.safe_load(YAML)), gallery_cache=cache, engine=engine
    )
    assert [s.gate.door for s in services] == ["lobby_in", "lobby_out"]
    assert agent.commands.get("gallery.sync") is not None
    for service in services:
        assert service.gate.pipeline.gallery.version == 3
        assert "lin_manuel_miranda" in service.gate.pipeline.gallery.people
    assert services[0].sync is not None and services[0].sync.version == 3

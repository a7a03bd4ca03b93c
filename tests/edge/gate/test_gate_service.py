"""The gate inside the real edge agent: frames → access event over MQTT, door released."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pytest

from edge.agent import EdgeAgent
from edge.gate.bundle import Bundle
from edge.gate.capture import Frame
from edge.gate.faces import RGB, FaceEngine, letterbox, load_rgb
from edge.gate.gate import Gate
from edge.gate.pipeline import Pipeline, PipelineConfig
from edge.gate.policy import DoorConfig, PersonConfig, PolicyConfig
from edge.gate.service import GateService
from edge.gate.sync import GallerySync
from edge.testing import Subscriber, edge_config, running, until
from linli.services import Mosquitto
from protocols.messages import AccessDecision, AccessEvent, AccessKind
from protocols.topics import Channel

pytestmark = [pytest.mark.anyio, pytest.mark.faces]


async def test_grant_reaches_the_broker_and_releases_the_door(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
    engine: FaceEngine,
    bundle: Bundle,
    faces_data: Path,
) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    photo = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"))
    for i in range(6):
        cv2.imwrite(str(frames / f"{i:03d}.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))

    sub = subscriber_for(mosquitto, site)
    config = edge_config(
        tmp_path, mosquitto, site, actuators={"doors": [{"id": "main", "open_seconds": 30}]}
    )
    agent = EdgeAgent(config)
    policy = PolicyConfig(
        doors={"main": DoorConfig(door="main", liveness=False)},  # a still photo: liveness off
        people={"obama": PersonConfig(person_id="obama")},
    )
    gate = Gate(
        door="main",
        camera="cam1",
        pipeline=Pipeline(engine, bundle.gallery(), PipelineConfig()),
        policy=policy,
        sink=lambda e: None,
    )
    sync = GallerySync(tmp_path / "gallery.json", lambda b: gate.set_gallery(b.gallery()))
    service = GateService(agent, gate, str(frames), sync=sync)
    async with running(agent):
        service.attach()
        assert agent.commands.get("gallery.sync") is not None
        await asyncio.wait_for(service.run(), 240)  # generous: 2 shared cores
        await sub.await_for(
            lambda ms: any(isinstance(d.message, AccessEvent) for d in ms), within=60
        )
        door = agent.actuators.doors["main"]
        await until(lambda: door.released, within=60, what="door released")
    events = [d.message for d in sub.snapshot(Channel.ACCESS)]
    assert len(events) == 1
    event = events[0]
    assert isinstance(event, AccessEvent)
    assert event.kind is AccessKind.DECISION and event.decision is AccessDecision.GRANTED
    assert event.person_id == "obama" and event.boot_id == agent.boot_id
    assert service.frames == 6


class ReplaySource:
    """Frames from memory (a stand-in for a camera that delivers one corrupt frame)."""

    live = False
    name = "replay"

    def __init__(self, frames: list[RGB]) -> None:
        self.frames = frames
        self.index = 0

    def read(self) -> Frame | None:
        if self.index >= len(self.frames):
            return None
        frame = Frame(self.frames[self.index], self.index, time.monotonic(), self.index / 10)
        self.index += 1
        return frame

    def close(self) -> None:
        pass


def test_a_bad_frame_is_skipped_and_the_loop_goes_on(
    engine: FaceEngine, bundle: Bundle, faces_data: Path
) -> None:
    photo = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"))
    bad = np.zeros((480, 640, 3), np.float64)  # dlib refuses non-8-bit images
    frames: list[RGB] = [photo, photo.copy(), photo.copy(), photo.copy()]
    frames.insert(1, bad)  # type: ignore[arg-type]
    events: list[AccessEvent] = []
    policy = PolicyConfig(
        doors={"main": DoorConfig(door="main", liveness=False)},
        people={"obama": PersonConfig(person_id="obama")},
    )
    gate = Gate(
        door="main",
        camera="cam1",
        pipeline=Pipeline(engine, bundle.gallery(), PipelineConfig(motion_gating=False)),
        policy=policy,
        sink=events.append,
    )
    service = GateService(
        cast(EdgeAgent, None), gate, "replay", opener=lambda: ReplaySource(frames)
    )
    service._work()  # the worker loop itself, on this thread; no agent needed without attach()
    assert service.frames == 5 and service.errors == 1
    assert [e.person_id for e in events if e.decision is AccessDecision.GRANTED] == ["obama"]

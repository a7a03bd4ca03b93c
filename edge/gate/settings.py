"""Configuration of one gate (door + camera) and the factory that builds it for the agent.

The edge agent's configuration can hold a list of these (e.g. a ``gates:`` section in
``edge.yaml``); :func:`build_services` turns them into :class:`GateService` objects to run.

    gates:
      - door: lobby_in
        camera: cam_lobby
        source: rtsp://10.0.0.5/stream1
        policy:
          doors: {lobby_in: {door: lobby_in, liveness: true}}
          people: {alice: {person_id: alice, credentials: {card: "04A1B2"}}}
        pipeline: {upsample: 0, roi: [80, 0, 480, 480]}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.gate.pipeline import PipelineConfig
from edge.gate.policy import PolicyConfig
from protocols.ids import Ident

if TYPE_CHECKING:
    from edge.agent import EdgeAgent
    from edge.gate.bundle import Bundle
    from edge.gate.faces import FaceEngine
    from edge.gate.service import GateService


class GateSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    door: Ident = Field(description="Door this gate controls (an actuator door id)")
    camera: Ident = Field(description="Camera id, reported in access events")
    source: str = Field(
        min_length=1, description="rtsp://… or http://… URL, USB index ('0'), video file, folder"
    )
    stride: int = Field(
        1, ge=1, le=100, description="Video files and folders: process every Nth frame"
    )
    policy: PolicyConfig
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    unknown_interval_s: float = Field(30.0, gt=0, description="One unknown-face event per …")
    held_open_s: float = Field(30.0, gt=0, description="Door open longer than this: alarm")
    repeat_s: float = Field(10.0, ge=0, description="Same face outcome again within: ignored")
    count_passages: bool = Field(
        False,
        description="Count faces that leave the view while the door is open as people passing "
        "(tailgating); for a camera facing the doorway without a beam sensor",
    )

    @model_validator(mode="after")
    def _door_in_policy(self) -> GateSettings:
        if self.door not in self.policy.doors:
            raise ValueError(f"policy.doors has no entry for door {self.door!r}")
        return self


def build_services(
    agent: EdgeAgent,
    gates: Sequence[GateSettings],
    *,
    gallery_cache: Path | None = None,
    engine: FaceEngine | None = None,
) -> list[GateService]:
    """Gates wired to ``agent`` (events → outbox, grants → ``door.open``), sharing one dlib
    engine and one gallery: a single ``gallery.sync`` handler updates every gate."""
    import numpy as np

    from edge.gate.faces import FaceEngine
    from edge.gate.gate import Gate
    from edge.gate.matching import Gallery
    from edge.gate.passes import COMMAND as PASSES_COMMAND
    from edge.gate.passes import PassBook
    from edge.gate.pipeline import Pipeline
    from edge.gate.service import GateService
    from edge.gate.sync import GallerySync

    shared_engine = engine or FaceEngine()
    empty = Gallery([], np.zeros((0, 128)))
    built: list[Gate] = []
    for settings in gates:
        built.append(
            Gate(
                door=settings.door,
                camera=settings.camera,
                pipeline=Pipeline(shared_engine, empty, settings.pipeline),
                policy=settings.policy,
                sink=lambda event: None,  # replaced by attach()
                unknown_interval_s=settings.unknown_interval_s,
                held_open_s=settings.held_open_s,
                repeat_s=settings.repeat_s,
                count_passages=settings.count_passages,
            )
        )

    def apply(bundle: Bundle) -> None:
        gallery, names = bundle.gallery(), bundle.names()
        for gate in built:
            gate.set_gallery(gallery, names)

    book = PassBook(built, agent.config.state_dir / "passes.json")
    book.load_cached()
    agent.commands.register(PASSES_COMMAND, book.handle, replace=True)
    cache = gallery_cache or agent.config.state_dir / "gallery.json"
    sync = GallerySync(cache, apply)
    sync.load_cached()
    services = []
    for i, (settings, gate) in enumerate(zip(gates, built, strict=True)):
        service = GateService(
            agent, gate, settings.source, sync=sync if i == 0 else None, stride=settings.stride
        )
        service.attach()
        services.append(service)
    return services

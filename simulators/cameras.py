"""Virtual cameras: image folders and video files through the real gate pipeline.

Two modes:

* **real** (:func:`run_camera`, a scenario's ``camera`` step): frames from an image folder or a
  video file go through :class:`edge.gate.gate.Gate` — motion gate, dlib detection, quality,
  tracking, encoding, matching, vote, door policy — and every access event it makes is handed to
  the simulated gateway's real agent (``agent.emit``). The gallery is a gallery bundle file
  (``edge.gate.bundle``, as ``linli faces`` writes it). CPU-heavy: a few frames per second.
* **cheap** (a scenario's ``access`` step, :meth:`simulators.gateways.SimGateway.emit_access`):
  pre-decided :class:`~protocols.messages.AccessEvent` values, each labelled
  ``attrs.simulated = true``, for scale tests and rule scenarios.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from simulators.errors import SimulatorError
from simulators.scenario import CameraStep, Scenario

if TYPE_CHECKING:
    from simulators.gateways import SimGateway

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}


def frames(source: Path, *, every: int = 1) -> Iterator[npt.NDArray[np.uint8]]:
    """RGB frames of a folder of images (sorted by name) or a video file (every N-th frame)."""
    import cv2

    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise SimulatorError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in {source}")
        for path in files:
            bgr = cv2.imread(str(path))
            if bgr is None:
                log.warning("camera: unreadable image %s skipped", path)
                continue
            yield np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
        return
    if not source.is_file():
        raise SimulatorError(f"camera source {source} is neither a folder nor a file")
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise SimulatorError(f"cannot open video {source}")
    try:
        n = 0
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            n += 1
            if (n - 1) % every == 0:
                yield np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    finally:
        capture.release()


async def run_camera(gateway: SimGateway, step: CameraStep, scenario: Scenario) -> None:
    """Feed ``step.source`` through the real gate pipeline of ``gateway`` at ``step.fps``."""
    from edge.envelope import utc
    from edge.gate.bundle import parse
    from edge.gate.faces import FaceEngine
    from edge.gate.gate import Gate
    from edge.gate.matching import Gallery
    from edge.gate.pipeline import Pipeline
    from edge.gate.policy import DoorConfig, PersonConfig, PolicyConfig
    from protocols.messages import AccessEvent

    source = scenario.resolve(step.source)
    if step.gallery is not None:
        bundle = parse(scenario.resolve(step.gallery).read_bytes())
        gallery, names = bundle.gallery(), bundle.names()
    else:
        gallery, names = Gallery([], []), {}
    policy = PolicyConfig(
        doors={step.door: DoorConfig(door=step.door, liveness=False)},
        people={pid: PersonConfig(person_id=pid, name=names.get(pid)) for pid in gallery.people},
    )
    engine = await asyncio.to_thread(FaceEngine)
    pending: list[AccessEvent] = []
    gate = Gate(
        door=step.door,
        camera=step.camera,
        pipeline=Pipeline(engine, gallery),
        policy=policy,
        sink=pending.append,  # dlib runs in a worker thread; the agent is emitted to here
        names=names,
    )
    period = 1.0 / step.fps
    loop = asyncio.get_running_loop()
    count = 0
    for rgb in frames(source, every=step.every):
        started = loop.time()
        at = utc(gateway.now())
        await asyncio.to_thread(gate.frame, rgb, at)
        if pending:
            gateway.agent.emit(*pending)
            count += len(pending)
            pending.clear()
        await asyncio.sleep(max(0.0, period - (loop.time() - started)))
    log.info("camera %s: %s done, %d access events", step.camera, source, count)

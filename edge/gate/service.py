"""The gate inside the edge agent: camera → :class:`Gate` on a worker thread → agent outbox.

    service = GateService(agent, gate, source="rtsp://cam1/stream", sync=gallery_sync)
    service.attach()                 # registers gallery.sync, routes events and door opens
    await service.run()              # until cancelled (run it as one of the agent's tasks)

Vision is CPU-bound, so frames are processed on a worker thread; every access event and door
command crosses back to the agent's event loop (``call_soon_threadsafe``), where the event is
re-stamped with the agent's boot id and sequence (one sequence per gateway boot) and stored in
the outbox, and the grant runs the agent's own ``door.open`` command (so it is logged the same
way as a cloud command).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import cv2

from edge.gate.capture import LatestFrameGrabber, Source, open_source, read_all
from edge.gate.faces import RGB
from edge.gate.gate import Gate
from edge.gate.policy import Decision
from edge.gate.sync import GallerySync
from protocols.codec import new_id
from protocols.messages import AccessEvent, Command

if TYPE_CHECKING:
    from edge.agent import EdgeAgent

log = logging.getLogger(__name__)
ENVELOPE = frozenset({"v", "msg_id", "boot_id", "seq", "ts", "historical"})


class GateService:
    def __init__(
        self,
        agent: EdgeAgent,
        gate: Gate,
        source: str,
        *,
        sync: GallerySync | None = None,
        stride: int = 1,
        opener: Callable[[], Source] | None = None,
    ) -> None:
        self.agent = agent
        self.gate = gate
        self.source = source
        self.sync = sync
        self.stride = max(1, stride)
        self.opener = opener or (lambda: open_source(source))
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.frames = 0
        self.errors = 0

    def attach(self) -> None:
        """Route the gate's events and grants through the agent; register ``gallery.sync``."""
        self.gate.sink = self._event_from_worker
        self.gate.open_door = self._grant_from_worker
        if self.sync is not None:
            self.agent.commands.register("gallery.sync", self.sync.handle, replace=True)

    # -- worker thread → event loop ------------------------------------------------------
    def _event_from_worker(self, event: AccessEvent) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._store_event, event)

    def _store_event(self, event: AccessEvent) -> None:
        fields = event.model_dump(exclude=set(ENVELOPE))
        self.agent.emit(self.agent.stamp(AccessEvent, ts=event.ts, **fields))

    def _grant_from_worker(self, decision: Decision) -> None:
        assert self._loop is not None
        now = datetime.now(UTC)
        command = Command(
            cmd_id=new_id(),
            name="door.open",
            target=decision.door,
            issued_at=now,
            expires_at=now + timedelta(seconds=10),
            issued_by="gate",
        )
        asyncio.run_coroutine_threadsafe(self.agent.execute(command, local=True), self._loop)

    # -- lifetime ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Process frames until cancelled (or until a file/folder source ends)."""
        self._loop = asyncio.get_running_loop()
        self._stop.clear()
        worker = asyncio.create_task(asyncio.to_thread(self._work))
        try:
            await asyncio.shield(worker)
        finally:
            self._stop.set()
            await asyncio.wait({worker}, timeout=10)

    def stop(self) -> None:
        self._stop.set()

    def _work(self) -> None:
        live = "://" in self.source or self.source.isdigit()
        if not live:  # files and folders: every frame in order (a replay, a test, a demo)
            # A replay keeps its own clock (start + media time): on a busy machine the frames
            # arrive late, but a face seen in 0.3 s of video is still one track and one vote.
            start = datetime.now(UTC)
            for frame in read_all(self.opener()):
                if self._stop.is_set():
                    return
                if frame.index % self.stride == 0:
                    at = (
                        None
                        if frame.position_s is None
                        else start + timedelta(seconds=frame.position_s)
                    )
                    self._process(frame.rgb, at or datetime.now(UTC))
            return
        with LatestFrameGrabber(self.opener) as grabber:
            while not self._stop.is_set():
                newest = grabber.get(timeout=1.0)
                if newest is not None:
                    # When the frame was captured, not when the worker got to it.
                    age = max(0.0, time.monotonic() - newest.captured)
                    self._process(newest.rgb, datetime.now(UTC) - timedelta(seconds=age))

    def _process(self, rgb: RGB, at: datetime) -> None:
        self.frames += 1
        try:
            self.gate.frame(rgb, at)
        except (RuntimeError, ValueError, cv2.error) as exc:  # dlib/OpenCV on a bad frame
            self.errors += 1
            log.warning("gate %s: frame %d skipped: %s", self.gate.door, self.frames, exc)

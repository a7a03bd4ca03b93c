"""Frame sources: RTSP/HTTP streams, USB devices, video files and image folders (OpenCV).

:class:`LatestFrameGrabber` reads a source on its own thread and always hands out the newest
frame: a consumer slower than the camera gets fresh frames, never a growing backlog (frames it
never took are counted as ``dropped``). A live stream that stops is reopened with capped,
jittered backoff; a file or folder ends.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from edge.gate.errors import ImageError, SourceError
from edge.gate.faces import RGB, load_rgb

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass(frozen=True, slots=True)
class Frame:
    rgb: RGB
    index: int
    """Position in the source (frames read, including dropped ones)."""
    captured: float
    """time.monotonic() when read; for files, also see ``position_s``."""
    position_s: float | None = None
    """Media time for files (frame index / fps), else None."""


class Source(Protocol):
    live: bool
    name: str

    def read(self) -> Frame | None:
        """The next frame, or None at the end (files) or on a read failure (streams)."""

    def close(self) -> None: ...


def _rgb(bgr: np.ndarray) -> RGB:
    return np.ascontiguousarray(bgr[:, :, ::-1], dtype=np.uint8)


class VideoSource:
    """OpenCV ``VideoCapture``: a URL (rtsp://, http://), a device index, or a file."""

    def __init__(self, spec: str | int) -> None:
        self.name = str(spec)
        self.live = isinstance(spec, int) or "://" in str(spec)
        if not self.live and not Path(str(spec)).is_file():
            raise SourceError(self.name, "no such file")
        self._cap = cv2.VideoCapture(spec)
        if not self._cap.isOpened():
            raise SourceError(self.name, "cannot open")
        if self.live:
            self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if fps > 0 else None
        self._index = 0

    def read(self) -> Frame | None:
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        index = self._index
        self._index += 1
        position = index / self.fps if (self.fps and not self.live) else None
        return Frame(_rgb(bgr), index, time.monotonic(), position)

    def close(self) -> None:
        self._cap.release()


class FolderSource:
    """Image files of a folder in name order, one frame each."""

    live = False

    def __init__(self, folder: Path, fps: float = 5.0) -> None:
        self.name = str(folder)
        self.files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        self.fps = fps
        self._index = 0
        self.skipped = 0

    def read(self) -> Frame | None:
        while self._index < len(self.files):
            path = self.files[self._index]
            index = self._index
            self._index += 1
            try:
                return Frame(load_rgb(path), index, time.monotonic(), index / self.fps)
            except ImageError as exc:
                self.skipped += 1
                log.warning("skipping %s: %s", path, exc.detail)
        return None

    def close(self) -> None:
        pass


def open_source(spec: str) -> Source:
    """``0``/``1``… → USB device; a folder → images; a URL or file → OpenCV."""
    if spec.isdigit():
        return VideoSource(int(spec))
    path = Path(spec)
    if path.is_dir():
        return FolderSource(path)
    return VideoSource(spec)


def read_all(source: Source) -> Iterator[Frame]:
    """Every frame of a finite source (files, folders), in order."""
    try:
        while (frame := source.read()) is not None:
            yield frame
    finally:
        source.close()


class LatestFrameGrabber:
    """A reader thread keeping only the newest frame; ``get()`` waits for a fresher one."""

    def __init__(
        self,
        opener: Callable[[], Source],
        *,
        backoff_s: float = 0.5,
        max_backoff_s: float = 10.0,
        pace_files: bool = True,
    ) -> None:
        self._opener = opener
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.pace_files = pace_files
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._taken_index = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self.read = 0
        self.dropped = 0
        self.reconnects = 0
        self.ended = False

    def __enter__(self) -> LatestFrameGrabber:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def get(self, timeout: float = 5.0) -> Frame | None:
        """The newest frame not handed out yet; None on timeout or when a file ended."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._latest is None or self._latest.index <= self._taken_index:
                remaining = deadline - time.monotonic()
                if self.ended or self._stop.is_set() or remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame = self._latest
            self._taken_index = frame.index
            return frame

    def _publish(self, frame: Frame) -> None:
        with self._cond:
            if self._latest is not None and self._latest.index > self._taken_index:
                self.dropped += 1  # never taken: a newer one replaces it
            self._latest = frame
            self.read += 1
            self._cond.notify_all()

    def _run(self) -> None:
        delay = self.backoff_s
        index_base = 0
        while not self._stop.is_set():
            try:
                source = self._opener()
            except SourceError as exc:
                log.warning("camera open failed: %s; retrying in %.1fs", exc, delay)
                self._stop.wait(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.max_backoff_s)
                continue
            delay = self.backoff_s
            started = time.monotonic()
            last_index = -1
            try:
                while not self._stop.is_set():
                    frame = source.read()
                    if frame is None:
                        break
                    last_index = frame.index
                    if not source.live and self.pace_files and frame.position_s is not None:
                        wait = started + frame.position_s - time.monotonic()
                        if wait > 0:
                            self._stop.wait(wait)
                    self._publish(
                        Frame(frame.rgb, index_base + frame.index, frame.captured, frame.position_s)
                    )
            finally:
                source.close()
            index_base += last_index + 1
            if not source.live:
                break
            self.reconnects += 1
            log.warning("stream %s dropped; reconnecting", source.name)
            self._stop.wait(delay * random.uniform(0.8, 1.2))
        with self._cond:
            self.ended = True
            self._cond.notify_all()

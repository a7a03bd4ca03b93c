"""RTSP capture: Debian's ffmpeg publishes the sample clip to OpenCV listening on 127.0.0.1.

OpenCV's FFmpeg backend opens ``rtsp://…`` as an RTSP *server* when
``OPENCV_FFMPEG_CAPTURE_OPTIONS`` says ``rtsp_flags;listen|listen_timeout;60``;
``ffmpeg -re … -f rtsp`` then pushes the clip in real time, like a camera. Skipped only where
the ffmpeg binary is missing (``scripts/install-services.sh`` installs it; CI has it).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.gate.capture import LatestFrameGrabber, open_source
from linli.services.base import free_port

FFMPEG = shutil.which("ffmpeg")
pytestmark = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg binary not installed")


class Publisher:
    """``ffmpeg -re -i clip -f rtsp URL``, restarted until the listener accepts it."""

    def __init__(self, clip: Path, url: str) -> None:
        self.clip = clip
        self.url = url
        self.proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.started = 0

    def _run(self) -> None:
        assert FFMPEG is not None
        while not self._stop.is_set():
            command = [FFMPEG, "-nostdin", "-loglevel", "error", "-re", "-stream_loop", "-1"]
            command += ["-i", str(self.clip), "-an", "-c:v", "copy"]  # the clip's H.264
            command += ["-f", "rtsp", "-rtsp_transport", "tcp", self.url]
            self.proc = subprocess.Popen(
                command,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            self.started += 1
            self.proc.wait()
            self._stop.wait(0.2)  # not listening yet (or dropped): try again

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def kill(self) -> None:
        """Drop the stream (the camera goes away); the loop starts a new one."""
        if self.proc is not None:
            self.proc.kill()

    def stop(self) -> None:
        self._stop.set()
        self.kill()
        self._thread.join(timeout=10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def rtsp_url(monkeypatch: pytest.MonkeyPatch) -> str:
    # listen_timeout must be given: OpenCV's own default maps to an out-of-range -1000.
    options = "rtsp_flags;listen|listen_timeout;60|rtsp_transport;tcp"
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", options)
    return f"rtsp://127.0.0.1:{free_port()}/cam"


@pytest.fixture
def publisher(clip: Path, rtsp_url: str) -> Iterator[Publisher]:
    pub = Publisher(clip, rtsp_url)
    yield pub
    pub.stop()


def test_rtsp_stream_frames_and_reconnect(publisher: Publisher, rtsp_url: str) -> None:
    with LatestFrameGrabber(lambda: open_source(rtsp_url), backoff_s=0.1) as grabber:
        publisher.start()
        frame = grabber.get(timeout=60)
        assert frame is not None
        assert frame.rgb.shape == (360, 640, 3)  # the sample clip's size, decoded
        # Counted from here: a slow first connect may already have counted a reconnect.
        before = grabber.reconnects
        publisher.kill()  # the camera drops; OpenCV listens again, ffmpeg comes back
        deadline = time.monotonic() + 90
        while grabber.reconnects <= before:
            assert time.monotonic() < deadline, "the dropped stream was not reconnected"
            got = grabber.get(timeout=5)
            frame = got if got is not None else frame
        # Frames decoded before the drop may still be handed over: wait for new ones.
        reconnected_at = frame.index
        while frame.index <= reconnected_at + 5:
            assert time.monotonic() < deadline, f"no frames after {grabber.reconnects} reconnects"
            got = grabber.get(timeout=5)
            frame = got if got is not None else frame
    assert publisher.started >= 2

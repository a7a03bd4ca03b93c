"""Capture: a real HTTP MJPEG stream read by OpenCV, newest-frame hand-off, reconnects, files."""

from __future__ import annotations

import http.server
import itertools
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.gate.capture import FolderSource, Frame, LatestFrameGrabber, open_source, read_all
from edge.gate.errors import SourceError

FRAMES_PER_CONNECTION = 30


def jpeg(i: int) -> bytes:
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, :, 1] = (i * 8) % 256  # the frame number, readable back from the pixels
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


class MjpegStream:
    """An HTTP MJPEG camera on 127.0.0.1 that drops the connection after 30 frames."""

    def __init__(self, frame_delay: float, frames: list[bytes] | None = None) -> None:
        self.connections = 0
        self.sent = 0
        delay = frame_delay
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.connections += 1
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace;boundary=f")
                self.end_headers()
                try:
                    for i in range(FRAMES_PER_CONNECTION):
                        data = jpeg(i) if frames is None else frames[outer.sent % len(frames)]
                        outer.sent += 1
                        head = b"--f\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                        self.wfile.write(head % len(data) + data + b"\r\n")
                        time.sleep(delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cam.mjpg"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def stream() -> Iterator[MjpegStream]:
    s = MjpegStream(frame_delay=0.01)
    yield s
    s.close()


def test_newest_frame_only_and_stale_frames_counted(stream: MjpegStream) -> None:
    taken = []
    with LatestFrameGrabber(lambda: open_source(stream.url), backoff_s=0.05) as grabber:
        for _ in range(8):
            frame = grabber.get(timeout=10)
            assert frame is not None
            taken.append(frame.index)
            time.sleep(0.06)  # a slow consumer: several frames arrive meanwhile
        dropped = grabber.dropped
    assert taken == sorted(taken) and len(set(taken)) == len(taken)
    assert dropped > 0
    assert max(b - a for a, b in itertools.pairwise(taken)) > 1  # skipped stale ones


def test_reconnects_a_dropped_stream(stream: MjpegStream) -> None:
    with LatestFrameGrabber(lambda: open_source(stream.url), backoff_s=0.05) as grabber:
        deadline = time.monotonic() + 30
        last = -1
        while grabber.reconnects < 1 or last < FRAMES_PER_CONNECTION:
            assert time.monotonic() < deadline, "no reconnect"
            frame = grabber.get(timeout=10)
            if frame is not None:
                last = frame.index
    assert stream.connections >= 2
    assert last >= FRAMES_PER_CONNECTION  # indices keep growing across reconnects


def test_sample_video_over_mjpeg_arrives_intact_across_a_drop(clip: Path) -> None:
    """The sample clip as a camera's MJPEG stream: decoded frames match what was sent, and the
    stream (dropped every 30 frames) keeps coming."""
    originals = [f.rgb for f in read_all(open_source(str(clip))) if f.index < 45]
    encoded = [
        cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
        for rgb in originals
    ]
    stream = MjpegStream(frame_delay=0.02, frames=[e.tobytes() for e in encoded])
    try:
        with LatestFrameGrabber(lambda: open_source(stream.url), backoff_s=0.05) as grabber:
            got: list[Frame] = []
            deadline = time.monotonic() + 60
            while grabber.reconnects < 1 or len(got) < 35:
                assert time.monotonic() < deadline, f"{len(got)} frames, {grabber.reconnects} drops"
                frame = grabber.get(timeout=10)
                if frame is not None:
                    got.append(frame)
    finally:
        stream.close()
    assert all(f.rgb.shape == (360, 640, 3) for f in got)
    # Each frame is one of the clip's (JPEG-lossy): its best match is close.
    last = got[-1].rgb.astype(np.float32)
    errors = [float(np.mean(np.abs(last - o.astype(np.float32)))) for o in originals]
    assert min(errors) < 4.0, min(errors)
    assert stream.connections >= 2


def test_unreachable_camera_retries_with_backoff() -> None:
    attempts = []

    def opener() -> object:
        attempts.append(time.monotonic())
        raise SourceError("rtsp://10.0.0.9/cam", "cannot open")

    grabber = LatestFrameGrabber(opener, backoff_s=0.02, max_backoff_s=0.1)  # type: ignore[arg-type]
    with grabber:
        assert grabber.get(timeout=0.5) is None
    assert len(attempts) >= 3
    assert grabber.read == 0


def test_video_file_ends(clip: Path) -> None:
    with LatestFrameGrabber(lambda: open_source(str(clip)), pace_files=False) as grabber:
        got = 0
        while (frame := grabber.get(timeout=10)) is not None:
            got += 1
            assert frame.rgb.shape == (360, 640, 3)
        assert grabber.ended and got >= 1
        assert got + grabber.dropped == grabber.read == 275


def test_folder_source_skips_unreadable_files(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((10, 12, 3), np.uint8))
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(tmp_path / "c.png"), np.full((10, 12, 3), 255, np.uint8))
    source = open_source(str(tmp_path))
    assert isinstance(source, FolderSource)
    frames = list(read_all(source))
    assert [f.index for f in frames] == [0, 2]
    assert source.skipped == 1


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file"):
        open_source(str(tmp_path / "nope.mp4"))

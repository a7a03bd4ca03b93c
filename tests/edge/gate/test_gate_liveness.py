"""Liveness from landmarks: a still photo fails, a live face passes, a blink is seen."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.gate.capture import open_source, read_all
from edge.gate.faces import RGB, FaceEngine, load_rgb
from edge.gate.liveness import LivenessConfig, Points, assess, ear

pytestmark = pytest.mark.faces


def landmarks_of(engine: FaceEngine, rgb: RGB) -> Points:
    faces = engine.faces(np.ascontiguousarray(rgb))
    assert len(faces) == 1
    return faces[0].landmarks


def test_still_photo_repeated_fails(engine: FaceEngine, faces_data: Path) -> None:
    photo = load_rgb(faces_data / "probe" / "obama.jpg")
    frames = [landmarks_of(engine, photo.copy()) for _ in range(6)]  # detected anew each frame
    result = assess(frames)
    assert result.score == 0.0 and not result.blink and result.frames == 6


def test_photo_moved_by_hand_fails(engine: FaceEngine, faces_data: Path) -> None:
    photo = load_rgb(faces_data / "probe" / "obama.jpg")
    h, w = photo.shape[:2]
    frames = []
    for k in range(6):  # rotated, scaled and shifted: rigid motion only
        m = cv2.getRotationMatrix2D((w / 2, h / 2), 2.0 * k, 1 + 0.03 * k)
        m[0, 2] += 8 * k
        frames.append(landmarks_of(engine, np.asarray(cv2.warpAffine(photo, m, (w, h)), np.uint8)))
    assert assess(frames).score < 0.5


def test_live_face_in_the_video_passes(engine: FaceEngine, clip: Path) -> None:
    frames = []
    for frame in read_all(open_source(str(clip))):
        if 90 <= frame.index < 120 and frame.index % 3 == 0:
            faces = engine.faces(frame.rgb, upsample=1)
            if faces:
                frames.append(faces[0].landmarks)
    assert len(frames) >= 6
    assert assess(frames[:6]).score >= 0.5


def test_blink_from_eye_aspect_ratio() -> None:
    rng = np.random.default_rng(3)
    base = rng.uniform(100, 200, (68, 2)).astype(np.float32)
    eye = np.array([[0, 0], [3, -2], [7, -2], [10, 0], [7, 2], [3, 2]], np.float32)
    open_face = base.copy()
    open_face[36:42] = eye + np.array([120, 120], np.float32)
    open_face[42:48] = eye + np.array([150, 120], np.float32)
    shut = open_face.copy()
    shut[[37, 38, 43, 44], 1] += 1.6  # upper lids down
    shut[[40, 41, 46, 47], 1] -= 1.6  # lower lids up
    assert ear(shut) < 0.3 * ear(open_face)
    frames = [open_face, open_face, shut, open_face, open_face]
    cfg = LivenessConfig(min_frames=4)
    result = assess(frames, cfg)
    assert result.blink and result.score == 1.0
    assert not assess([open_face] * 5, cfg).blink


def test_too_few_frames_score_zero() -> None:
    pts = np.zeros((68, 2), np.float32)
    assert assess([pts, pts], LivenessConfig(min_frames=4)).score == 0.0

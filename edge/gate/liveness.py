"""Liveness from 68-point landmarks across frames: blink (eye aspect ratio) and non-rigid motion.

A printed photo held still gives the same landmarks frame after frame: no blink, no motion. A
photo moved by hand moves *rigidly*, so each frame's landmarks are first aligned to the first
frame by a similarity transform (Procrustes) and only the residual — the face changing shape as
a real head turns, talks or blinks — counts as motion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

Points = npt.NDArray[np.float32]
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)


class LivenessConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_frames: int = Field(4, ge=2, description="Frames needed before a score is given")
    blink_drop: float = Field(
        0.75, gt=0, lt=1, description="EAR below this fraction of the open-eye EAR is a blink"
    )
    motion_floor: float = Field(
        0.015,
        ge=0,
        description="Residual landmark motion (unit-scale RMS) that landmark noise alone gives: "
        "a photo moved by hand measured ≈0.02, a talking head ≥0.05",
    )
    motion_full: float = Field(0.05, gt=0, description="Residual motion that scores 1.0")


@dataclass(frozen=True, slots=True)
class LivenessResult:
    score: float
    """0 (a still picture) … 1 (clearly alive)."""
    blink: bool
    motion: float
    frames: int


def eye_aspect_ratio(eye: Points) -> float:
    """Soukupová & Čech (2016): (|p2−p6| + |p3−p5|) / (2 |p1−p4|)."""
    vertical = np.linalg.norm(eye[1] - eye[5]) + np.linalg.norm(eye[2] - eye[4])
    horizontal = 2.0 * np.linalg.norm(eye[0] - eye[3])
    return float(vertical / horizontal) if horizontal > 0 else 0.0


def ear(points: Points) -> float:
    return (eye_aspect_ratio(points[LEFT_EYE]) + eye_aspect_ratio(points[RIGHT_EYE])) / 2.0


def _normalise(points: Points) -> npt.NDArray[np.float64]:
    p = points.astype(np.float64)
    p = p - p.mean(axis=0)
    scale = float(np.sqrt((p**2).sum() / len(p)))
    return np.asarray(p / scale if scale > 0 else p, dtype=np.float64)


def _residual(reference: npt.NDArray[np.float64], points: Points) -> float:
    """RMS distance after the best similarity alignment (both sets normalised to unit scale)."""
    q = _normalise(points)
    u, _, vt = np.linalg.svd(q.T @ reference)
    rotation = u @ vt
    aligned = q @ rotation
    return float(np.sqrt(((aligned - reference) ** 2).sum(axis=1).mean()))


def assess(frames: Sequence[Points], config: LivenessConfig | None = None) -> LivenessResult:
    """Score a sequence of one tracked face's landmarks (oldest first)."""
    cfg = config or LivenessConfig()
    if len(frames) < cfg.min_frames:
        return LivenessResult(0.0, False, 0.0, len(frames))
    ears = np.array([ear(p) for p in frames])
    open_eye = float(np.percentile(ears, 90))
    closed = ears < cfg.blink_drop * open_eye
    # A blink is a dip with open eyes on both sides, not eyes closed throughout.
    blink = bool(closed.any() and not closed[0] and not closed[-1] and not closed.all())
    reference = _normalise(frames[0])
    residuals = [_residual(reference, p) for p in frames[1:]]
    motion = float(np.median(residuals)) if residuals else 0.0
    span = max(cfg.motion_full - cfg.motion_floor, 1e-9)
    motion_score = float(np.clip((motion - cfg.motion_floor) / span, 0.0, 1.0))
    score = 1.0 if blink else motion_score
    return LivenessResult(round(score, 3), blink, motion, len(frames))

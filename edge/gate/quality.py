"""Face-quality checks before encoding: size, sharpness (Laplacian variance) and pose.

HOG at low upsampling fires on badges, posters and patterned patches; those are small, flat or
have landmark geometry no real frontal face has. A face that fails is neither encoded nor voted.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edge.gate.faces import RGB, Face

NOSE_TIP = 30
CHIN = 8
EYE_OUTER_LEFT = 36
EYE_OUTER_RIGHT = 45
BLUR_SIDE = 96


class QualityConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_face_px: int = Field(60, ge=20, description="Smallest face box side, in frame pixels")
    min_sharpness: float = Field(
        40.0, ge=0, description="Laplacian variance of the face resized to 96 px (blur check)"
    )
    max_yaw: float = Field(
        0.3, gt=0, le=0.5, description="|nose offset from the eye midpoint| / eye distance"
    )
    pitch_range: tuple[float, float] = Field(
        (0.2, 0.75), description="(nose − eye line) / (chin − eye line), frontal ≈ 0.45"
    )
    eye_to_box: tuple[float, float] = Field(
        (0.3, 0.9), description="Eye distance / box width; outside it the landmarks are junk"
    )


@dataclass(frozen=True, slots=True)
class Quality:
    ok: bool
    reason: str | None
    size: int
    sharpness: float
    yaw: float
    pitch: float


def sharpness(rgb: RGB, face: Face) -> float:
    box = face.box
    crop = rgb[box.top : box.bottom, box.left : box.right]
    if crop.size == 0:
        return 0.0
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    gray = cv2.resize(gray, (BLUR_SIDE, BLUR_SIDE), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def pose(face: Face) -> tuple[float, float, float]:
    """(yaw, pitch, eye distance / box width) from the 68 landmarks."""
    pts = face.landmarks
    left, right = pts[EYE_OUTER_LEFT], pts[EYE_OUTER_RIGHT]
    eye_mid = (left + right) / 2
    eye_dist = float(np.linalg.norm(right - left))
    if eye_dist <= 0:
        return 1.0, 0.0, 0.0
    axis = (right - left) / eye_dist
    normal = np.array([-axis[1], axis[0]], dtype=np.float32)
    nose = pts[NOSE_TIP] - eye_mid
    chin = pts[CHIN] - eye_mid
    yaw = abs(float(nose @ axis)) / eye_dist
    chin_down = float(chin @ normal)
    pitch = float(nose @ normal) / chin_down if chin_down > 0 else 0.0
    return yaw, pitch, eye_dist / max(face.box.width, 1)


def assess(rgb: RGB, face: Face, config: QualityConfig | None = None) -> Quality:
    cfg = config or QualityConfig()
    size = min(face.box.width, face.box.height)
    yaw, pitch, eye_ratio = pose(face)
    sharp = sharpness(rgb, face)
    reason: str | None = None
    if size < cfg.min_face_px:
        reason = "face_too_small"
    elif not cfg.eye_to_box[0] <= eye_ratio <= cfg.eye_to_box[1]:
        reason = "not_a_face"
    elif yaw > cfg.max_yaw or not cfg.pitch_range[0] <= pitch <= cfg.pitch_range[1]:
        reason = "pose"
    elif sharp < cfg.min_sharpness:
        reason = "blurred"
    return Quality(reason is None, reason, size, round(sharp, 1), round(yaw, 3), round(pitch, 3))

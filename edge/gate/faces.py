"""dlib face detection, 68-point landmarks and 128-d encodings — the models face_recognition wraps.

The model files come from the ``face-recognition-models`` package, located *without importing it*
(it imports ``pkg_resources``, which new setuptools no longer ships). Images are RGB ``uint8``
arrays (H, W, 3); :func:`load_rgb` reads files with OpenCV and converts from BGR.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import dlib
import numpy as np
import numpy.typing as npt

from edge.gate.errors import ImageError, ModelFilesMissing
from edge.gate.resnet import CHIP_PADDING, CHIP_SIZE, FaceResNet

RGB = npt.NDArray[np.uint8]
Vec = npt.NDArray[np.float32]
ENCODING_SIZE = 128

PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"
RECOGNITION = "dlib_face_recognition_resnet_model_v1.dat"


def models_dir() -> Path:
    """The directory holding the dlib ``.dat`` files, found without importing the package."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(
            "package face-recognition-models is not installed (pip install 'linli[edge]')"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "models"
        if (candidate / PREDICTOR_68).is_file() and (candidate / RECOGNITION).is_file():
            return candidate
    raise ModelFilesMissing(f"no {PREDICTOR_68} under {list(spec.submodule_search_locations)}")


@dataclass(frozen=True, slots=True)
class Box:
    """A face rectangle in full-frame pixel coordinates (right/bottom exclusive)."""

    left: int
    top: int
    right: int
    bottom: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def area(self) -> int:
        return max(0, self.width) * max(0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.left + self.right) / 2, (self.top + self.bottom) / 2)

    def iou(self, other: Box) -> float:
        w = min(self.right, other.right) - max(self.left, other.left)
        h = min(self.bottom, other.bottom) - max(self.top, other.top)
        if w <= 0 or h <= 0:
            return 0.0
        inter = w * h
        return inter / float(self.area + other.area - inter)

    def scaled(self, factor: float) -> Box:
        return Box(
            round(self.left * factor),
            round(self.top * factor),
            round(self.right * factor),
            round(self.bottom * factor),
        )

    def clipped(self, width: int, height: int) -> Box:
        return Box(
            max(0, self.left), max(0, self.top), min(width, self.right), min(height, self.bottom)
        )

    def to_dlib(self) -> Any:
        return dlib.rectangle(self.left, self.top, self.right, self.bottom)


@dataclass(frozen=True, slots=True)
class Face:
    """One detected face: its box, 68 landmarks (x, y) and the dlib shape used for encoding."""

    box: Box
    landmarks: npt.NDArray[np.float32]
    shape: Any  # dlib.full_object_detection, kept for the encoder


def load_rgb(path: Path | str) -> RGB:
    """Read an image file as RGB; raises :class:`ImageError` if it is not an image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageError(str(path), "unreadable", exc.strerror or str(exc)) from exc
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise ImageError(str(path), "unreadable", "not a readable image")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def letterbox(rgb: RGB, width: int = 640, height: int = 480) -> RGB:
    """``rgb`` scaled to fit a ``width``×``height`` black frame (a camera view of a photo)."""
    scale = min(width / rgb.shape[1], height / rgb.shape[0])
    size = (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    frame = np.zeros((height, width, 3), np.uint8)
    y, x = (height - size[1]) // 2, (width - size[0]) // 2
    frame[y : y + size[1], x : x + size[0]] = small
    return frame


class FaceEngine:
    """Loads the dlib models once; thread-safe (one lock around dlib calls).

    Encodings (``jitters=1``) run dlib's ResNet with numpy (:mod:`edge.gate.resnet`: same
    weights, same result to ~1e-6, ≈ 6× faster than the ``dlib-bin`` wheel, which has no BLAS)
    outside the lock; ``jitters > 1`` (random jitter) and :meth:`encode_dlib` use dlib itself.
    """

    def __init__(self, directory: Path | None = None) -> None:
        where = directory or models_dir()
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(where / PREDICTOR_68))
        self._encoder = dlib.face_recognition_model_v1(str(where / RECOGNITION))
        self._resnet = FaceResNet(where / RECOGNITION)
        self._lock = threading.Lock()

    def detect(self, rgb: RGB, *, scale: float = 1.0, upsample: int = 0) -> list[Box]:
        """Face boxes in ``rgb`` coordinates, detected on a copy resized by ``scale``."""
        height, width = rgb.shape[:2]
        small = rgb
        if scale != 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            small = np.asarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), np.uint8)
        with self._lock:
            rects = self._detector(small, upsample)
        boxes = [
            Box(r.left(), r.top(), r.right(), r.bottom()).scaled(1.0 / scale).clipped(width, height)
            for r in rects
        ]
        return [b for b in boxes if b.width > 0 and b.height > 0]

    def landmarks(self, rgb: RGB, box: Box) -> Face:
        with self._lock:
            shape = self._predictor(rgb, box.to_dlib())
        points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        return Face(box=box, landmarks=points, shape=shape)

    def faces(self, rgb: RGB, *, scale: float = 1.0, upsample: int = 0) -> list[Face]:
        return [self.landmarks(rgb, b) for b in self.detect(rgb, scale=scale, upsample=upsample)]

    def chip(self, rgb: RGB, face: Face) -> RGB:
        """The aligned 150×150 face chip dlib's encoder reads (padding 0.25)."""
        with self._lock:
            chip = dlib.get_face_chip(rgb, face.shape, CHIP_SIZE, CHIP_PADDING)
        return np.asarray(chip, dtype=np.uint8)

    def encode(self, rgb: RGB, face: Face, *, jitters: int = 1) -> Vec:
        if jitters > 1:
            return self.encode_dlib(rgb, face, jitters=jitters)
        return self._resnet.encode(self.chip(rgb, face))

    def encode_dlib(self, rgb: RGB, face: Face, *, jitters: int = 1) -> Vec:
        """dlib's own ``compute_face_descriptor`` (the reference :meth:`encode` agrees with)."""
        with self._lock:
            descriptor = self._encoder.compute_face_descriptor(rgb, face.shape, jitters)
        return np.asarray(descriptor, dtype=np.float32)

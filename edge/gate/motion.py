"""Cheap motion gating: a tiny grey frame differenced with the previous one."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from edge.gate.faces import RGB

SIZE = (80, 60)


class MotionGate:
    """``moved(frame)`` is True when more than ``min_fraction`` of pixels changed noticeably."""

    def __init__(self, *, pixel_delta: int = 18, min_fraction: float = 0.004) -> None:
        self.pixel_delta = pixel_delta
        self.min_fraction = min_fraction
        self._previous: npt.NDArray[np.uint8] | None = None
        self.last_fraction = 0.0

    def moved(self, rgb: RGB) -> bool:
        small = cv2.resize(rgb, SIZE, interpolation=cv2.INTER_AREA)
        gray = np.asarray(
            cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), (3, 3), 0), np.uint8
        )
        previous, self._previous = self._previous, gray
        if previous is None:
            self.last_fraction = 1.0
            return True
        changed = cv2.absdiff(gray, previous) > self.pixel_delta
        self.last_fraction = float(np.count_nonzero(changed)) / changed.size
        return self.last_fraction >= self.min_fraction

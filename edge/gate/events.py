"""Access events on the wire (``protocols.messages.AccessEvent``) and their thumbnails."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any

import cv2
import numpy as np

from edge.gate.faces import RGB, Box
from protocols.codec import new_id
from protocols.messages import (
    MAX_THUMBNAIL_BYTES,
    AccessDecision,
    AccessEvent,
    AccessKind,
    AccessMethod,
)

EventSink = Callable[[AccessEvent], None]
"""Where events go: the edge agent's outbox ``emit``/``put``, or a list's ``append`` in tests."""


def thumbnail_jpeg(rgb: RGB, box: Box, *, side: int = 160, margin: float = 0.3) -> bytes:
    """A JPEG of the face with a margin, at most ``side`` px and ≤ 20 KB (quality lowered)."""
    h, w = rgb.shape[:2]
    mx, my = int(box.width * margin), int(box.height * margin)
    crop = rgb[
        max(0, box.top - my) : min(h, box.bottom + my),
        max(0, box.left - mx) : min(w, box.right + mx),
    ]
    if crop.size == 0:
        crop = rgb
    scale = min(1.0, side / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale)))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), np.uint8)
    bgr = cv2.cvtColor(crop, cv2.COLOR_RGB2BGR)
    for quality in (85, 70, 55, 40, 25, 10):
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok and len(buf) <= MAX_THUMBNAIL_BYTES:
            return bytes(buf)
    raise ValueError("thumbnail does not fit in 20 KB")  # unreachable at 160 px


class EventFactory:
    """Stamps envelope fields (msg id, boot id, per-boot sequence) on access events."""

    def __init__(self, boot_id: str | None = None) -> None:
        self.boot_id = boot_id or new_id()
        self._seq = itertools.count()

    def access(
        self,
        *,
        door: str,
        kind: AccessKind,
        at: datetime,
        reason: str,
        decision: AccessDecision = AccessDecision.NONE,
        method: AccessMethod = AccessMethod.NONE,
        thumbnail: bytes | None = None,
        **fields: Any,
    ) -> AccessEvent:
        thumb = base64.b64encode(thumbnail).decode() if thumbnail is not None else None
        return AccessEvent(
            msg_id=new_id(),
            boot_id=self.boot_id,
            seq=next(self._seq),
            ts=at,
            door=door,
            kind=kind,
            decision=decision,
            reason=reason,
            method=method,
            thumbnail_jpeg_b64=thumb,
            **fields,
        )


class RateLimiter:
    """At most one event per key every ``interval_s`` seconds (by event time)."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[str, datetime] = {}
        self.suppressed = 0

    def allow(self, key: str, at: datetime) -> bool:
        last = self._last.get(key)
        if last is not None and (at - last).total_seconds() < self.interval_s:
            self.suppressed += 1
            return False
        self._last[key] = at
        return True

"""A small IoU / centroid tracker and the per-track identity vote.

A door never opens on one frame: each tracked face collects votes (one match result per encoded
frame) and landmarks (for liveness); the identity is decided by majority once enough votes agree.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from edge.gate.faces import Box, Face
from edge.gate.liveness import Points


@dataclass(frozen=True, slots=True)
class Vote:
    person_id: str | None
    nearest: str | None
    distance: float


@dataclass(slots=True)
class Track:
    track_id: int
    box: Box
    first_seen: datetime
    last_seen: datetime
    landmarks: list[Points] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    decided: bool = False
    """An identity was decided (a known person): no more encodings for this track."""
    unknown_reported: bool = False
    best_face: Face | None = None
    hits: int = 0

    def leader(self) -> tuple[str | None, int]:
        """The enrolled person with the most votes (``None`` if no vote matched) and its count."""
        counts = Counter(v.person_id for v in self.votes if v.person_id is not None)
        if not counts:
            return None, 0
        return counts.most_common(1)[0]

    def distance_for(self, identity: str | None) -> float | None:
        """Median distance of the votes for ``identity`` (or to the nearest person if unknown)."""
        values = [v.distance for v in self.votes if v.person_id == identity]
        finite = [d for d in values if np.isfinite(d)]
        return float(np.median(finite)) if finite else None


class Tracker:
    def __init__(
        self, *, min_iou: float = 0.3, max_center_shift: float = 1.0, ttl_s: float = 1.5
    ) -> None:
        self.min_iou = min_iou
        self.max_center_shift = max_center_shift
        self.ttl_s = ttl_s
        self.tracks: dict[int, Track] = {}
        self._ids = itertools.count(1)

    def _score(self, track: Track, box: Box) -> float:
        iou = track.box.iou(box)
        if iou >= self.min_iou:
            return 1.0 + iou
        (x1, y1), (x2, y2) = track.box.center, box.center
        shift = float(np.hypot(x1 - x2, y1 - y2)) / max(track.box.width, 1)
        return 1.0 - shift if shift <= self.max_center_shift else 0.0

    def update(self, faces: list[Face], at: datetime) -> list[tuple[Track, Face]]:
        """Assign faces to tracks (greedy, best score first); new tracks for the rest."""
        self.expire(at)
        pairs = sorted(
            (
                (self._score(t, f.box), tid, i)
                for tid, t in self.tracks.items()
                for i, f in enumerate(faces)
            ),
            reverse=True,
        )
        used_tracks: set[int] = set()
        used_faces: set[int] = set()
        out: list[tuple[Track, Face]] = []
        for score, tid, i in pairs:
            if score <= 0 or tid in used_tracks or i in used_faces:
                continue
            used_tracks.add(tid)
            used_faces.add(i)
            out.append((self.tracks[tid], faces[i]))
        for i, face in enumerate(faces):
            if i not in used_faces:
                track = Track(next(self._ids), face.box, at, at)
                self.tracks[track.track_id] = track
                out.append((track, face))
        for track, face in out:
            track.box, track.last_seen = face.box, at
            track.hits += 1
        return out

    def expire(self, at: datetime) -> list[Track]:
        gone = [t for t in self.tracks.values() if (at - t.last_seen).total_seconds() > self.ttl_s]
        for track in gone:
            del self.tracks[track.track_id]
        return gone

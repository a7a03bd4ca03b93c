"""The vision pipeline: frame → motion gate → detect → quality → track → encode/match → vote.

It turns frames into :class:`Sighting` results — one per tracked face once its vote is decided —
and never talks to a door: :class:`edge.gate.gate.Gate` applies the policy to sightings.

Cost control on a 2-core gateway: detection runs only when something moved (or a face is being
tracked), on a downscaled frame or a region of interest; a track is encoded only until its
vote is decided (≈ 23 ms per encoding with dlib's ResNet run by numpy, :mod:`edge.gate.resnet`;
≈ 140 ms with dlib's own code), while landmarks (≈ 4 ms) keep feeding liveness.
A frame that can decide pays for one heavy step only: the periodic whole-frame detection is
postponed (a frame or two) while a tracked face's next vote is due, a frame that still ran one
(a tracked face was lost) takes no deciding vote — only a new face's first vote, which can
never decide — and at most ``max_encodings_per_frame`` faces are encoded per frame (fewest
votes first). So the frame that opens the door costs a region detection (≈ 19 ms: three face
sizes square) + landmarks + at most one encoding, never a whole-frame detection on top.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge.gate import liveness, quality
from edge.gate.faces import RGB, Box, Face, FaceEngine
from edge.gate.liveness import LivenessConfig
from edge.gate.matching import DEFAULT_THRESHOLD, Gallery
from edge.gate.motion import MotionGate
from edge.gate.quality import QualityConfig
from edge.gate.tracker import Track, Tracker, Vote

log = logging.getLogger(__name__)


class PipelineConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    detect_scale: float = Field(
        1.0, gt=0, le=2, description="Resize factor applied before HOG detection"
    )
    upsample: int = Field(0, ge=0, le=2, description="dlib HOG upsampling (0 ≈ 28 ms at 640×480)")
    roi: tuple[int, int, int, int] | None = Field(
        None, description="Region of interest (x, y, width, height) in frame pixels"
    )
    motion_gating: bool = Field(True, description="Skip detection on still scenes")
    track_guided: bool = Field(
        True, description="While faces are tracked, detect only around them between full passes"
    )
    full_detect_every: int = Field(
        4, ge=1, description="With track-guided detection, a whole-frame pass every N frames"
    )
    min_agree: int = Field(
        2, ge=2, description="Votes that must agree before an identity is decided"
    )
    max_votes: int = Field(
        5, ge=2, description="Votes kept per track; this many without a match = unknown face"
    )
    revote_every: int = Field(
        3, ge=1, description="After an unknown report, re-encode the track every N frames"
    )
    max_encodings_per_frame: int = Field(
        1, ge=1, le=10, description="Faces encoded per frame at most (fewest votes first)"
    )
    split_heavy_steps: bool = Field(
        True, description="Encode nothing on a frame that ran a whole-frame detection"
    )
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0, le=1.5, description="Match distance")
    need_liveness_frames: bool = Field(
        True, description="Wait for enough landmark frames to score liveness before deciding"
    )
    max_wait_frames: int = Field(
        15, ge=1, description="Frames a decided track waits for liveness frames at most"
    )
    jitters: int = Field(1, ge=1, le=10)
    track_ttl_s: float = Field(1.5, gt=0)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    liveness: LivenessConfig = Field(default_factory=LivenessConfig)

    @model_validator(mode="after")
    def _votes(self) -> PipelineConfig:
        if self.max_votes < self.min_agree:
            raise ValueError("max_votes must be ≥ min_agree")
        return self


@dataclass(frozen=True, slots=True)
class Sighting:
    """A tracked face whose identity vote is decided."""

    track_id: int
    person_id: str | None
    """None = an unknown face (not in the gallery)."""
    nearest: str | None
    distance: float | None
    votes: int
    liveness: float
    blink: bool
    box: Box
    frame: RGB = field(repr=False)
    """The frame of the last encoded face, for the thumbnail."""


@dataclass(slots=True)
class Stats:
    frames: int = 0
    still_skipped: int = 0
    detections: int = 0
    full_detections: int = 0
    """Whole-frame (or whole-ROI) detection passes."""
    encodings: int = 0
    encodings_deferred: int = 0
    """Encodings postponed to a later frame (frame budget)."""
    rejected: Counter[str] = field(default_factory=Counter)


class Pipeline:
    def __init__(
        self, engine: FaceEngine, gallery: Gallery, config: PipelineConfig | None = None
    ) -> None:
        self.engine = engine
        self.gallery = gallery
        self.config = config or PipelineConfig()
        self.tracker = Tracker(ttl_s=self.config.track_ttl_s)
        self.motion = MotionGate()
        self.stats = Stats()
        self._last_frames: dict[int, RGB] = {}
        self._waited: Counter[int] = Counter()
        self._waiting: set[int] = set()
        self._since_full = 0
        self.departed: list[Track] = []
        """Tracks that ended on the last frame (people who left the view)."""

    def set_gallery(self, gallery: Gallery) -> None:
        """Swap the gallery (atomic reference swap); running votes restart on the new one."""
        self.gallery = gallery
        for track in self.tracker.tracks.values():
            if not track.decided:
                track.votes.clear()

    def _detect_in(self, rgb: RGB, region: Box) -> list[Box]:
        cfg = self.config
        crop = np.ascontiguousarray(rgb[region.top : region.bottom, region.left : region.right])
        if crop.shape[0] < 20 or crop.shape[1] < 20:
            return []
        found = self.engine.detect(crop, scale=cfg.detect_scale, upsample=cfg.upsample)
        return [
            Box(
                b.left + region.left,
                b.top + region.top,
                b.right + region.left,
                b.bottom + region.top,
            )
            for b in found
        ]

    def _track_regions(self, width: int, height: int) -> list[Box]:
        """Each tracked face's box grown by one face size on every side."""
        regions = []
        for track in self.tracker.tracks.values():
            b = track.box
            grown = Box(b.left - b.width, b.top - b.height, b.right + b.width, b.bottom + b.height)
            regions.append(grown.clipped(width, height))
        return regions

    def detect(self, rgb: RGB, *, full: bool = True) -> list[Face]:
        """Faces with landmarks: in the ROI (or whole frame), or only around tracked faces."""
        cfg = self.config
        height, width = rgb.shape[:2]
        if not full:
            boxes: list[Box] = []
            for region in self._track_regions(width, height):
                for box in self._detect_in(rgb, region):
                    if all(box.iou(other) < 0.5 for other in boxes):
                        boxes.append(box)
        elif cfg.roi is None:
            boxes = self.engine.detect(rgb, scale=cfg.detect_scale, upsample=cfg.upsample)
        else:
            x, y, w, h = cfg.roi
            boxes = self._detect_in(rgb, Box(x, y, x + w, y + h).clipped(width, height))
        self.stats.detections += 1
        self.stats.full_detections += full
        return [self.engine.landmarks(rgb, b) for b in boxes]

    def process(self, rgb: RGB, at: datetime, threshold: float | None = None) -> list[Sighting]:
        """One frame in; the sightings decided on this frame out (usually none)."""
        cfg = self.config
        self.stats.frames += 1
        self.departed = self.tracker.expire(at)
        for gone in set(self._last_frames) - set(self.tracker.tracks):
            self._last_frames.pop(gone, None)
            self._waited.pop(gone, None)
            self._waiting.discard(gone)
        moved = self.motion.moved(rgb) if cfg.motion_gating else True
        if not moved and not self.tracker.tracks:
            self.stats.still_skipped += 1
            return []
        # While faces are tracked, look only around them, with a full search every few frames
        # (new arrivals): ≈ 19 ms instead of ≈ 45 ms at 640×480 with a ~120 px face.
        self._since_full += 1
        full = (
            not cfg.track_guided
            or not self.tracker.tracks
            or self._since_full >= cfg.full_detect_every
        )
        if (
            full
            and self.tracker.tracks
            and cfg.split_heavy_steps
            and self._since_full < 2 * cfg.full_detect_every
            and self._vote_due()
        ):
            full = False  # this frame encodes a vote: the whole-frame pass waits a frame or two
        if full:
            self._since_full = 0
        found = self.detect(rgb, full=full)
        if not full and len(found) < len(self.tracker.tracks):
            self._since_full = 0  # a tracked face was not where expected: search everywhere
            found = self.detect(rgb, full=True)
            full = True
        good: list[Face] = []
        for face in found:
            q = quality.assess(rgb, face, cfg.quality)
            if q.ok:
                good.append(face)
            else:
                self.stats.rejected[q.reason or "quality"] += 1
        decided: list[Sighting] = []
        pairs = self.tracker.update(good, at)
        voting = self._to_encode(pairs, first_only=full and cfg.split_heavy_steps)
        for track, face in pairs:
            track.landmarks.append(face.landmarks)
            del track.landmarks[: -cfg.max_wait_frames - cfg.max_votes]
            if track.decided:
                if cfg.need_liveness_frames and track.track_id in self._waiting:
                    sighting = self._settle(track, *track.leader())
                    if sighting is not None:
                        decided.append(sighting)
                continue
            if track.track_id in voting:
                self._vote(track, rgb, face, threshold or cfg.threshold)
                del track.votes[: -cfg.max_votes]
            person, count = track.leader()
            if person is not None and count >= cfg.min_agree:
                track.decided = True
                self._waiting.add(track.track_id)
                sighting = self._settle(track, person, count)
                if sighting is not None:
                    decided.append(sighting)
            elif len(track.votes) >= cfg.max_votes and not track.unknown_reported:
                track.unknown_reported = True  # keeps voting, slower, in case it gets closer
                sighting = self._settle(track, None, len(track.votes))
                if sighting is not None:
                    decided.append(sighting)
        return decided

    def _wants_vote(self, track: Track, hits: int) -> bool:
        """Still voting: undecided, and an unknown face only every ``revote_every`` frames."""
        every = self.config.revote_every
        return not track.decided and (not track.unknown_reported or hits % every == 0)

    def _vote_due(self) -> bool:
        """A tracked face will take a deciding vote (not its first) on the coming frame."""
        return any(
            t.votes and self._wants_vote(t, t.hits + 1) for t in self.tracker.tracks.values()
        )

    def _to_encode(self, pairs: list[tuple[Track, Face]], *, first_only: bool) -> set[int]:
        """Ids of the tracks encoded on this frame: those still voting, fewest votes first,
        ``max_encodings_per_frame`` at most. After a whole-frame detection (``first_only``) only
        a new face's first vote — which can never decide — is taken; the rest wait a frame."""
        wanting = [t for t, _ in pairs if self._wants_vote(t, t.hits)]
        wanting.sort(key=lambda t: (len(t.votes), t.track_id))
        chosen = [t for t in wanting if not (first_only and t.votes)]
        chosen = chosen[: self.config.max_encodings_per_frame]
        self.stats.encodings_deferred += len(wanting) - len(chosen)
        return {t.track_id for t in chosen}

    def _vote(self, track: Track, rgb: RGB, face: Face, threshold: float) -> None:
        encoding = self.engine.encode(rgb, face, jitters=self.config.jitters)
        self.stats.encodings += 1
        match = self.gallery.match(encoding, threshold)
        track.votes.append(Vote(match.person_id, match.nearest, match.distance))
        track.best_face = face
        self._last_frames[track.track_id] = rgb

    def _settle(self, track: Track, identity: str | None, votes: int) -> Sighting | None:
        """Build the sighting, or wait (up to ``max_wait_frames``) for liveness frames."""
        cfg = self.config
        live = liveness.assess(track.landmarks, cfg.liveness)
        waiting = cfg.need_liveness_frames and live.frames < cfg.liveness.min_frames
        if identity is not None and waiting:
            self._waited[track.track_id] += 1
            if self._waited[track.track_id] < cfg.max_wait_frames:
                return None
        self._waiting.discard(track.track_id)
        face = track.best_face
        frame = self._last_frames.get(track.track_id)
        if face is None or frame is None:
            return None
        if identity is None:
            finite = [v.distance for v in track.votes if np.isfinite(v.distance)]
            distance = float(np.median(finite)) if finite else None
        else:
            distance = track.distance_for(identity)
        nearest = Counter(v.nearest for v in track.votes).most_common(1)[0][0]
        return Sighting(
            track_id=track.track_id,
            person_id=identity,
            nearest=nearest,
            distance=distance,
            votes=votes,
            liveness=live.score,
            blink=live.blink,
            box=face.box,
            frame=frame,
        )

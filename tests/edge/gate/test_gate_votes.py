"""The vote per tracked face: the faster encoder changes no evidence, a lost track starts over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.gate.bundle import Bundle
from edge.gate.capture import open_source, read_all
from edge.gate.enrol import encode_one
from edge.gate.faces import RGB, Face, FaceEngine, Vec, letterbox, load_rgb
from edge.gate.matching import Gallery
from edge.gate.pipeline import Pipeline, PipelineConfig, Sighting

pytestmark = pytest.mark.faces
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class DlibEncoding:
    """The same engine, encoding with dlib's own ``compute_face_descriptor``."""

    def __init__(self, engine: FaceEngine) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def encode(self, rgb: RGB, face: Face, *, jitters: int = 1) -> Vec:
        return self.engine.encode_dlib(rgb, face, jitters=jitters)


def camera_frames(clip: Path, first: int, last: int) -> list[RGB]:
    """Frames of the sample clip around the enrolled person, as a 640×480 gate camera sees
    them (the crop bench/gate.py uses)."""
    out = []
    for frame in read_all(open_source(str(clip))):
        if first <= frame.index <= last:
            crop = frame.rgb[0:360, 60:540]
            out.append(np.ascontiguousarray(cv2.resize(crop, (640, 480)), dtype=np.uint8))
    return out


def run(pipeline: Pipeline, frames: list[RGB]) -> list[tuple[int, Sighting]]:
    decided = []
    for n, rgb in enumerate(frames):
        decided += [(n, s) for s in pipeline.process(rgb, T0 + timedelta(seconds=n / 10))]
    return decided


def test_the_vote_completes_on_the_same_frame_with_the_same_evidence(
    engine: FaceEngine, clip: Path, faces_data: Path
) -> None:
    """dlib's own encoder (the previous pipeline) and the numpy one, on the frames where the
    bench's slowest decisions happen (votes near the threshold): the same votes, the same
    deciding frame, the same sighting."""
    frames = camera_frames(clip, 142, 153)
    vector, _, _ = encode_one(engine, faces_data / "enroll" / "lin_manuel_miranda_1.png")
    gallery = Gallery(["lin_manuel_miranda"], [vector])
    ours = Pipeline(engine, gallery, PipelineConfig())
    reference = Pipeline(DlibEncoding(engine), gallery, PipelineConfig())  # type: ignore[arg-type]
    got, expected = run(ours, frames), run(reference, frames)
    assert expected, "the reference pipeline decided nothing on these frames"
    # Near the threshold: votes were missed before two agreed, so the deciding frame encoded.
    assert reference.stats.encodings > expected[-1][1].votes
    assert [(n, s.person_id, s.votes, s.track_id) for n, s in got] == [
        (n, s.person_id, s.votes, s.track_id) for n, s in expected
    ]
    for (_, a), (_, b) in zip(got, expected, strict=True):
        assert a.distance is not None and b.distance is not None
        assert abs(a.distance - b.distance) < 1e-4
        assert a.liveness == b.liveness and a.box == b.box
    assert ours.stats.encodings == reference.stats.encodings


def test_a_lost_track_starts_its_vote_over(
    engine: FaceEngine, bundle: Bundle, faces_data: Path
) -> None:
    face = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"))
    empty = np.zeros_like(face)
    pipeline = Pipeline(engine, bundle.gallery(), PipelineConfig(motion_gating=False))
    assert pipeline.process(face, T0) == []
    (first,) = pipeline.tracker.tracks.values()
    assert len(first.votes) == 1
    # Gone for longer than the track's time to live, then back: a new track, no votes kept.
    back = T0 + timedelta(seconds=pipeline.config.track_ttl_s + 0.5)
    pipeline.process(empty, T0 + timedelta(seconds=0.1))
    assert pipeline.process(face, back) == []
    assert [t.track_id for t in pipeline.departed] == [first.track_id]
    (second,) = pipeline.tracker.tracks.values()
    assert second.track_id != first.track_id and len(second.votes) == 1
    decided: list[Sighting] = []
    for n in range(1, 8):
        decided += pipeline.process(face, back + timedelta(seconds=n / 10))
    (sighting,) = decided
    assert sighting.track_id == second.track_id and sighting.person_id == "obama"
    # Only the returning face's own frames count: two votes, liveness frames from them alone.
    assert sighting.votes == 2 and len(second.landmarks) == 8

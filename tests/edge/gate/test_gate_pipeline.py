"""The real pipeline on the sample video and on a still photo, through the Gate controller."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge.gate.bundle import Bundle
from edge.gate.capture import open_source, read_all
from edge.gate.faces import RGB, FaceEngine, letterbox, load_rgb
from edge.gate.gate import Gate
from edge.gate.pipeline import Pipeline, PipelineConfig
from edge.gate.policy import DoorConfig, PersonConfig, PolicyConfig, Reason
from edge.gate.quality import QualityConfig, assess
from protocols.codec import decode, encode
from protocols.messages import (
    MAX_THUMBNAIL_BYTES,
    AccessDecision,
    AccessEvent,
    AccessKind,
)
from protocols.topics import Channel, topic

pytestmark = pytest.mark.faces
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def make_gate(
    engine: FaceEngine, bundle: Bundle, config: PipelineConfig, *, liveness: bool = True
) -> tuple[Gate, list[AccessEvent], list[str]]:
    people = {p.person_id: PersonConfig(person_id=p.person_id) for p in bundle.people}
    policy = PolicyConfig(doors={"main": DoorConfig(door="main", liveness=liveness)}, people=people)
    events: list[AccessEvent] = []
    opened: list[str] = []
    gate = Gate(
        door="main",
        camera="cam1",
        pipeline=Pipeline(engine, bundle.gallery(), config),
        policy=policy,
        sink=events.append,
        open_door=lambda d: opened.append(d.person_id or "?"),
        names={"lin_manuel_miranda": "Lin-Manuel Miranda"},
        unknown_interval_s=10,
    )
    return gate, events, opened


def assert_wire_valid(event: AccessEvent) -> None:
    decoded = decode(topic("site1", "gw1", Channel.ACCESS), encode(event), uplink=True)
    assert decoded.message == event
    if event.thumbnail_jpeg_b64 is not None:
        jpeg = base64.b64decode(event.thumbnail_jpeg_b64)
        assert len(jpeg) <= MAX_THUMBNAIL_BYTES and jpeg[:2] == b"\xff\xd8"


def test_sample_video_grants_the_enrolled_person_and_reports_strangers(
    engine: FaceEngine, bundle: Bundle, clip: Path
) -> None:
    config = PipelineConfig(upsample=1, quality=QualityConfig(min_face_px=40))
    gate, events, opened = make_gate(engine, bundle, config)
    for frame in read_all(open_source(str(clip))):
        if frame.index % 3:  # ≈10 fps processed, as the grabber would hand them
            continue
        assert frame.position_s is not None
        gate.frame(frame.rgb, T0 + timedelta(seconds=frame.position_s))

    for event in events:
        assert_wire_valid(event)
    granted = [e for e in events if e.decision is AccessDecision.GRANTED]
    assert [e.person_id for e in granted] == ["lin_manuel_miranda"]
    lin = granted[0]
    assert lin.kind is AccessKind.DECISION and lin.reason == Reason.ALLOW_LIST.value
    assert lin.person_name == "Lin-Manuel Miranda" and lin.camera == "cam1"
    assert lin.distance is not None and lin.distance <= 0.5
    assert lin.liveness is not None and lin.liveness >= 0.5
    votes = lin.attrs["votes"]
    assert lin.thumbnail_jpeg_b64 and isinstance(votes, float) and votes >= 2
    assert opened == ["lin_manuel_miranda"]

    unknown = [e for e in events if e.kind is AccessKind.UNKNOWN_FACE]
    assert unknown, "the other people in the clip must raise unknown-face events"
    for event in unknown:
        assert event.person_id is None and event.decision is AccessDecision.DENIED
        assert event.reason == "unknown_face" and event.thumbnail_jpeg_b64
    assert gate.pipeline.stats.encodings < gate.pipeline.stats.frames  # not every frame


def run_still(gate: Gate, frame: RGB, count: int = 12) -> None:
    for i in range(count):
        gate.frame(frame.copy(), T0 + timedelta(seconds=i / 10))


def test_still_photo_fails_liveness_where_liveness_is_on(
    engine: FaceEngine, bundle: Bundle, faces_data: Path
) -> None:
    frame = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"))
    gate, events, opened = make_gate(engine, bundle, PipelineConfig(), liveness=True)
    run_still(gate, frame)
    decisions = [e for e in events if e.kind is AccessKind.DECISION]
    assert len(decisions) == 1
    assert decisions[0].person_id == "obama"
    assert decisions[0].decision is AccessDecision.DENIED
    assert decisions[0].reason == Reason.LIVENESS_FAILED.value
    liveness = decisions[0].liveness
    assert liveness is not None and liveness < 0.2  # landmark noise only; the door needs 0.5
    assert opened == []


def test_liveness_is_configurable_per_door(
    engine: FaceEngine, bundle: Bundle, faces_data: Path
) -> None:
    frame = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"))
    gate, events, opened = make_gate(engine, bundle, PipelineConfig(), liveness=False)
    run_still(gate, frame)
    assert [e.reason for e in events if e.kind is AccessKind.DECISION] == ["allow_list"]
    assert opened == ["obama"]


def test_motion_gating_skips_still_scenes(engine: FaceEngine, bundle: Bundle) -> None:
    pipeline = Pipeline(engine, bundle.gallery())
    empty = np.full((480, 640, 3), 90, np.uint8)
    for i in range(10):
        assert pipeline.process(empty.copy(), T0 + timedelta(seconds=i)) == []
    assert pipeline.stats.detections == 1  # the first frame only
    assert pipeline.stats.still_skipped == 9
    moved = empty.copy()
    moved[100:300, 200:400] = 200
    pipeline.process(moved, T0 + timedelta(seconds=11))
    assert pipeline.stats.detections == 2


def test_quality_rejects_small_and_blurred_faces(engine: FaceEngine, faces_data: Path) -> None:
    photo = load_rgb(faces_data / "probe" / "obama.jpg")
    (face,) = engine.faces(photo)
    assert assess(photo, face).ok
    blurred = np.asarray(cv2.GaussianBlur(photo, (0, 0), 12), np.uint8)
    assert assess(blurred, face).reason == "blurred"
    badge = np.ascontiguousarray(
        cv2.resize(photo, None, fx=0.12, fy=0.12, interpolation=cv2.INTER_AREA), np.uint8
    )
    small_faces = engine.faces(badge, upsample=2)
    assert small_faces, "the badge-sized face should still be detected at upsample 2"
    assert assess(badge, small_faces[0]).reason == "face_too_small"


def test_roi_limits_detection(engine: FaceEngine, bundle: Bundle, faces_data: Path) -> None:
    frame = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"))
    inside = Pipeline(engine, bundle.gallery(), PipelineConfig(roi=(100, 0, 440, 480)))
    outside = Pipeline(engine, bundle.gallery(), PipelineConfig(roi=(0, 0, 100, 480)))
    assert len(inside.detect(frame)) == 1
    face = inside.detect(frame)[0]
    assert face.box.left >= 100  # boxes come back in full-frame coordinates
    assert outside.detect(frame) == []


def test_track_guided_detection_and_full_passes(
    engine: FaceEngine, bundle: Bundle, faces_data: Path
) -> None:
    face = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"), 480, 480)
    alone = np.zeros((480, 960, 3), np.uint8)
    alone[:, :480] = face
    both = alone.copy()
    both[:, 480:] = face  # a second person arrives on the right
    config = PipelineConfig(motion_gating=False, full_detect_every=3)
    pipeline = Pipeline(engine, bundle.gallery(), config)
    pipeline.process(alone, T0)  # no track yet: a whole-frame pass
    (track,) = pipeline.tracker.tracks.values()
    guided = pipeline.detect(both, full=False)
    assert len(guided) == 1 and guided[0].box.iou(track.box) > 0.8  # only around the track
    assert len(pipeline.detect(both, full=True)) == 2
    pipeline.process(both, T0 + timedelta(seconds=0.1))  # guided: newcomer not seen yet
    assert len(pipeline.tracker.tracks) == 1
    pipeline.process(both, T0 + timedelta(seconds=0.2))
    pipeline.process(both, T0 + timedelta(seconds=0.3))  # third frame: a full pass
    assert len(pipeline.tracker.tracks) == 2


def test_camera_counts_passages_for_tailgating(
    engine: FaceEngine, bundle: Bundle, faces_data: Path
) -> None:
    from edge.gate.policy import Credential

    face = letterbox(load_rgb(faces_data / "probe" / "obama.jpg"), 480, 480)
    two = np.zeros((480, 960, 3), np.uint8)
    two[:, :480] = face
    two[:, 480:] = face
    empty = np.zeros_like(two)
    policy = PolicyConfig(
        doors={"main": DoorConfig(door="main")},
        people={"alice": PersonConfig(person_id="alice", credentials={"card": "C1"})},
    )
    events: list[AccessEvent] = []
    gate = Gate(
        door="main",
        camera="cam1",
        pipeline=Pipeline(engine, bundle.gallery(), PipelineConfig(motion_gating=False)),
        policy=policy,
        sink=events.append,
        count_passages=True,
    )
    gate.credential(Credential(kind="card", value="C1"), T0)  # one grant …
    gate.contact(True, T0 + timedelta(seconds=1))
    for i in range(3):  # … two people in the doorway …
        gate.frame(two, T0 + timedelta(seconds=1.2 + i * 0.1))
    assert len(gate.pipeline.tracker.tracks) == 2
    alarms = gate.frame(empty, T0 + timedelta(seconds=4))  # … and both gone through
    assert [e.kind for e in alarms] == [AccessKind.TAILGATING]
    assert alarms[0].attrs == {"people": 2.0, "grants": 1.0}
    assert AccessKind.FORCED_OPEN not in [e.kind for e in events]

"""The Gate controller's non-camera inputs: cards/PIN/QR, second factor, door contact, events."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from edge.gate.events import RateLimiter, thumbnail_jpeg
from edge.gate.faces import Box, FaceEngine
from edge.gate.gate import Gate
from edge.gate.matching import Gallery
from edge.gate.pipeline import Pipeline, Sighting
from edge.gate.policy import Credential, DoorConfig, PersonConfig, PolicyConfig
from protocols.messages import MAX_THUMBNAIL_BYTES, AccessDecision, AccessEvent, AccessKind

T = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
pytestmark = pytest.mark.faces


def s(seconds: float) -> datetime:
    return T + timedelta(seconds=seconds)


def make(engine: FaceEngine, door: DoorConfig) -> tuple[Gate, list[AccessEvent], list[str]]:
    policy = PolicyConfig(
        doors={"main": door},
        people={"alice": PersonConfig(person_id="alice", credentials={"card": "C1", "pin": "42"})},
        blocked=frozenset({"mallory"}),
    )
    events: list[AccessEvent] = []
    opened: list[str] = []
    gate = Gate(
        door="main",
        camera="cam1",
        pipeline=Pipeline(engine, Gallery([], np.zeros((0, 128)))),
        policy=policy,
        sink=events.append,
        open_door=lambda d: opened.append(d.reason.value),
        unknown_interval_s=30,
        held_open_s=20,
    )
    return gate, events, opened


def sighting(person: str | None, track: int = 1) -> Sighting:
    rng = np.random.default_rng(track)
    frame = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    return Sighting(
        track_id=track,
        person_id=person,
        nearest="alice",
        distance=0.4 if person else 0.8,
        votes=3,
        liveness=1.0,
        blink=False,
        box=Box(200, 100, 400, 300),
        frame=frame,
    )


def test_card_opens_and_is_reported(engine: FaceEngine) -> None:
    gate, events, opened = make(engine, DoorConfig(door="main"))
    (event,) = gate.credential(Credential(kind="card", value="C1"), s(0))
    assert opened == ["allow_list"]
    assert event.decision is AccessDecision.GRANTED and event.method.value == "card"
    assert event.person_id == "alice" and events == [event]


def test_face_then_pin_as_second_factor(engine: FaceEngine) -> None:
    gate, _, opened = make(engine, DoorConfig(door="main", second_factor="pin"))
    (waiting,) = gate._on_sighting(sighting("alice"), s(0))
    assert waiting.reason == "second_factor_required" and opened == []
    (granted,) = gate.credential(Credential(kind="pin", value="42"), s(3))
    assert granted.decision is AccessDecision.GRANTED and granted.method.value == "face"
    assert opened == ["allow_list"]


def test_unknown_faces_are_rate_limited(engine: FaceEngine) -> None:
    gate, _, opened = make(engine, DoorConfig(door="main"))
    first = gate._on_sighting(sighting(None, 1), s(0))
    again = gate._on_sighting(sighting(None, 2), s(10))
    later = gate._on_sighting(sighting(None, 3), s(31))
    assert [len(first), len(again), len(later)] == [1, 0, 1]
    event = first[0]
    assert event.kind is AccessKind.UNKNOWN_FACE and event.reason == "unknown_face"
    assert event.thumbnail_jpeg_b64 is not None and opened == []
    assert gate.unknown_limiter.suppressed == 1


def test_block_listed_face_alerts_and_door_stays_shut(engine: FaceEngine) -> None:
    gate, _, opened = make(engine, DoorConfig(door="main"))
    (event,) = gate._on_sighting(sighting("mallory"), s(0))
    assert event.decision is AccessDecision.ALARM and event.reason == "block_list"
    assert opened == []


def test_door_contact_alarms_become_access_events(engine: FaceEngine) -> None:
    gate, _, _ = make(engine, DoorConfig(door="main"))
    forced = gate.contact(True, s(0))
    assert [e.kind for e in forced] == [AccessKind.FORCED_OPEN]
    gate.contact(False, s(2))
    gate.credential(Credential(kind="card", value="C1"), s(10))
    assert gate.contact(True, s(11)) == []
    assert [e.kind for e in gate.passed(2, s(12))] == [AccessKind.TAILGATING]
    held = gate.frame(np.zeros((480, 640, 3), np.uint8), s(40))
    assert [e.kind for e in held] == [AccessKind.HELD_OPEN]
    assert all(e.decision is AccessDecision.ALARM for e in forced + held)


def test_thumbnail_fits_the_wire_limit() -> None:
    noise = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    jpeg = thumbnail_jpeg(noise, Box(0, 0, 1920, 1080))
    assert len(jpeg) <= MAX_THUMBNAIL_BYTES and jpeg[:2] == b"\xff\xd8"
    assert len(base64.b64encode(jpeg)) <= (MAX_THUMBNAIL_BYTES * 4) // 3 + 4


def test_rate_limiter_per_key() -> None:
    limiter = RateLimiter(5)
    assert limiter.allow("a", s(0)) and limiter.allow("b", s(1))
    assert not limiter.allow("a", s(4))
    assert limiter.allow("a", s(5))


def test_a_reacquired_track_is_not_a_new_request(engine: FaceEngine) -> None:
    gate, events, opened = make(engine, DoorConfig(door="main"))
    assert len(gate._on_sighting(sighting("alice", 1), s(0))) == 1
    assert gate._on_sighting(sighting("alice", 2), s(4)) == []  # same person, track lost/found
    assert len(gate._on_sighting(sighting("alice", 3), s(15))) == 1  # a new visit
    assert opened == ["allow_list", "allow_list"]
    assert len(gate._on_sighting(sighting("mallory", 4), s(16))) == 1
    assert gate._on_sighting(sighting("mallory", 5), s(18)) == []
    assert gate.repeats_suppressed == 2 and len(events) == 0  # _on_sighting does not emit

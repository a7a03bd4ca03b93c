"""Enrolment rules with real photos: consent, one good face, duplicates, look-alikes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud.faces.store import Consent, FileGallery
from edge.gate.enrol import enrol, person_id_from
from edge.gate.faces import FaceEngine

pytestmark = pytest.mark.faces
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_person_id_from_file_name() -> None:
    assert person_id_from(Path("lin_manuel_miranda_1.png")) == "lin_manuel_miranda"
    assert person_id_from(Path("Obama.JPG")) == "obama"
    assert person_id_from(Path("zhang san-2.jpg")) == "zhang_san"


def test_refused_without_consent(engine: FaceEngine, enroll_dir: Path, tmp_path: Path) -> None:
    store = FileGallery(tmp_path / "g.json")
    (result,) = enrol(engine, store, [enroll_dir / "kit_harington_2.jpg"], at=T0)
    assert not result.ok and result.reason == "no_consent" and "--consent" in result.detail
    assert store.encodings() == []


def test_consent_given_now_is_recorded(
    engine: FaceEngine, enroll_dir: Path, tmp_path: Path
) -> None:
    store = FileGallery(tmp_path / "g.json")
    files = [enroll_dir / "kit_harington_2.jpg"]
    (result,) = enrol(engine, store, files, at=T0, consent_by="front desk")
    assert result.ok and result.person_id == "kit_harington"
    consent = FileGallery(tmp_path / "g.json").consent("kit_harington")
    assert consent is not None and consent.given_by == "front desk"


def test_earlier_consent_record_is_enough(
    engine: FaceEngine, enroll_dir: Path, tmp_path: Path
) -> None:
    store = FileGallery(tmp_path / "g.json")
    store.record_consent(Consent("kit_harington", "desk", "form", T0))
    (result,) = enrol(engine, store, [enroll_dir / "kit_harington_2.jpg"], at=T0)
    assert result.ok


def test_duplicates_detected(engine: FaceEngine, enroll_dir: Path, tmp_path: Path) -> None:
    store = FileGallery(tmp_path / "g.json")
    photo = enroll_dir / "kit_harington_2.jpg"
    resized = tmp_path / "kit_harington_copy.jpg"
    img = cv2.imread(str(photo))
    assert img is not None
    cv2.imwrite(str(resized), cv2.resize(img, None, fx=0.8, fy=0.8))
    results = list(enrol(engine, store, [photo, photo, resized], at=T0, consent_by="desk"))
    assert [r.reason for r in results] == ["enrolled", "duplicate", "duplicate"]
    assert "same photo" in results[1].detail and "same face" in results[2].detail
    assert len(store.encodings()) == 1


def test_look_alike_of_another_person_refused(
    engine: FaceEngine, enroll_dir: Path, tmp_path: Path
) -> None:
    store = FileGallery(tmp_path / "g.json")
    list(enrol(engine, store, [enroll_dir / "obama_1.jpg"], at=T0, consent_by="desk"))
    (r,) = enrol(
        engine, store, [enroll_dir / "obama_2.jpg"], at=T0, consent_by="desk", person_id="barack"
    )
    assert not r.ok and r.reason == "similar_to_other" and "obama" in r.detail
    (ok,) = enrol(
        engine,
        store,
        [enroll_dir / "obama_2.jpg"],
        at=T0,
        consent_by="desk",
        person_id="barack",
        allow_similar=True,
    )
    assert ok.ok


def test_exactly_one_face_per_photo(engine: FaceEngine, shared_data: Path, tmp_path: Path) -> None:
    store = FileGallery(tmp_path / "g.json")
    wall = tmp_path / "wall.png"
    cv2.imwrite(str(wall), np.full((300, 300, 3), 200, np.uint8))
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    group = shared_data / "faces" / "probe" / "obama+biden.jpg"
    results = list(enrol(engine, store, [wall, text, group], at=T0, consent_by="desk"))
    assert [r.reason for r in results] == ["no_face", "unreadable", "several_faces"]
    assert all(not r.ok and r.detail for r in results)
    assert store.encodings() == []

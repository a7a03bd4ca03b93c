"""Gate fixtures: the dlib engine and the sample gallery, built once per session (dlib is slow).

Sample data is read from ../shared/data (the ``shared_data`` fixture); nothing is copied.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from cloud.faces.store import FileGallery
from edge.gate.bundle import Bundle, build
from edge.gate.enrol import enrol, image_files
from edge.gate.faces import FaceEngine
from edge.gate.matching import Gallery

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def faces_data(shared_data: Path) -> Path:
    return shared_data / "faces"


@pytest.fixture(scope="session")
def clip(shared_data: Path) -> Path:
    return shared_data / "video" / "short_hamilton_clip.mp4"


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="session")
def enrolled_file(
    engine: FaceEngine, faces_data: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A file gallery with every photo of ``enroll/`` (enrolled once, with consent)."""
    path = tmp_path_factory.mktemp("gallery") / "gallery.json"
    store = FileGallery(path)
    results = list(
        enrol(engine, store, image_files([faces_data / "enroll"]), at=T0, consent_by="test")
    )
    failed = [(r.path.name, r.reason) for r in results if not r.ok]
    assert not failed, failed
    return path


@pytest.fixture
def gallery_file(enrolled_file: Path, tmp_path: Path) -> Path:
    """A private copy of the enrolled gallery, for tests that change it."""
    copy = tmp_path / "gallery.json"
    shutil.copy(enrolled_file, copy)
    return copy


@pytest.fixture(scope="session")
def bundle(enrolled_file: Path) -> Bundle:
    store = FileGallery(enrolled_file)
    grouped: dict[str, tuple[str | None, list[np.ndarray]]] = {}
    for enc in store.encodings():
        grouped.setdefault(enc.person_id, (None, []))[1].append(enc.vector)
    return build(1, T0, grouped)


@pytest.fixture(scope="session")
def gallery(bundle: Bundle) -> Gallery:
    return bundle.gallery()


@pytest.fixture
def no_leftover_threads() -> Iterator[None]:
    import threading

    before = set(threading.enumerate())
    yield
    extra = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not extra, f"threads left running: {extra}"

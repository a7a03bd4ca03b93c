"""Faces fixtures: the dlib engine once per session; sample photos from ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.gate.faces import FaceEngine


@pytest.fixture(scope="session")
def engine() -> FaceEngine:
    return FaceEngine()


@pytest.fixture(scope="session")
def enroll_dir(shared_data: Path) -> Path:
    return shared_data / "faces" / "enroll"

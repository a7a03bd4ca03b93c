"""The numpy ResNet gives dlib's encodings: the same votes, the same matches, from the same file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from edge.gate.errors import ModelFilesMissing
from edge.gate.faces import RECOGNITION, RGB, Face, FaceEngine, load_rgb, models_dir
from edge.gate.matching import Gallery, distance
from edge.gate.resnet import FaceResNet

pytestmark = pytest.mark.faces


ENROLLED = ("biden_2.jpg", "kit_harington_2.jpg", "obama_2.jpg", "rose_leslie_2.jpg")
PROBES = ("obama+biden.jpg", "kit_harington+rose_leslie.jpg", "obama_small.jpg")


def faces_in(engine: FaceEngine, path: Path) -> list[tuple[RGB, Face]]:
    rgb = load_rgb(path)
    return [(rgb, engine.landmarks(rgb, box)) for box in engine.detect(rgb)]


def test_numpy_encodings_equal_dlibs_and_match_the_same_people(
    engine: FaceEngine, faces_data: Path
) -> None:
    """Same encodings to 1e-4; a gallery enrolled with dlib's encoder and probed with ours (or
    enrolled with ours) decides exactly as dlib against dlib: same nearest person, same side of
    the threshold, same distance."""
    ids, ours, theirs = [], [], []
    for name in ENROLLED:
        ((rgb, face),) = faces_in(engine, faces_data / "enroll" / name)
        ids.append(name.rsplit("_", 1)[0])
        ours.append(engine.encode(rgb, face))
        theirs.append(engine.encode_dlib(rgb, face))
        assert ours[-1].dtype == np.float32 and ours[-1].shape == (128,)
        assert float(np.abs(ours[-1] - theirs[-1]).max()) < 1e-4, name
    dlib_gallery, numpy_gallery = Gallery(ids, theirs), Gallery(ids, ours)
    outcomes = []
    for name in PROBES:
        for rgb, face in faces_in(engine, faces_data / "probe" / name):
            probe, reference_probe = engine.encode(rgb, face), engine.encode_dlib(rgb, face)
            assert distance(probe, reference_probe) < 1e-4, name
            reference = dlib_gallery.match(reference_probe)
            for gallery in (dlib_gallery, numpy_gallery):
                got = gallery.match(probe)
                assert (got.person_id, got.nearest) == (reference.person_id, reference.nearest)
                assert abs(got.distance - reference.distance) < 1e-4
            outcomes.append(reference.person_id)
    # The probes hold the four enrolled people (Obama twice) and one face not enrolled.
    assert sorted(map(str, outcomes)) == [
        "None",
        "biden",
        "kit_harington",
        "obama",
        "obama",
        "rose_leslie",
    ]


def test_jittered_encodings_still_come_from_dlib(engine: FaceEngine, faces_data: Path) -> None:
    ((rgb, face),) = faces_in(engine, faces_data / "enroll" / "lin_manuel_miranda_1.png")
    plain = engine.encode(rgb, face)
    jittered = engine.encode(rgb, face, jitters=2)  # dlib averages 2 random jitters
    assert 1e-3 < distance(jittered, plain) < 0.3  # the same face, not the same computation


def test_a_model_file_that_is_not_the_resnet_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFilesMissing, match="cannot read"):
        FaceResNet(tmp_path / "missing.dat")
    truncated = tmp_path / "truncated.dat"
    truncated.write_bytes((models_dir() / RECOGNITION).read_bytes()[:200_000])
    with pytest.raises(ModelFilesMissing, match="end of the model file"):
        FaceResNet(truncated)
    other = tmp_path / "other.dat"
    other.write_bytes(b"\x01\x05hello" * 100)
    with pytest.raises(ModelFilesMissing):
        FaceResNet(other)


def test_blas_runs_on_one_thread_while_encoding_only() -> None:
    """A multi-threaded OpenBLAS on two busy cores made an encoding 30× slower."""
    blas = ThreadpoolController().select(user_api="blas")
    seen: list[int] = []

    class Spy(FaceResNet):
        def _forward(self, chip: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
            seen.append(min(i["num_threads"] for i in blas.info()))
            return super()._forward(chip)

    with blas.limit(limits=2):
        Spy(models_dir() / RECOGNITION).encode(np.zeros((150, 150, 3), np.uint8))
        assert seen == [1]
        assert min(i["num_threads"] for i in blas.info()) == 2  # restored afterwards


def test_a_chip_of_the_wrong_size_is_refused(engine: FaceEngine) -> None:
    net = FaceResNet(models_dir() / RECOGNITION)
    with pytest.raises(ValueError, match="150"):
        net.encode(np.zeros((100, 100, 3), np.uint8))

"""1:N matching: float32 with precomputed norms agrees with face_distance (float64)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.gate.matching import Gallery, face_distance_f64


def test_distances_agree_with_float64_baseline() -> None:
    rng = np.random.default_rng(7)
    known = rng.normal(0, 0.1, (500, 128))
    probe = rng.normal(0, 0.1, 128)
    gallery = Gallery([f"p{i}" for i in range(500)], known)
    assert gallery.matrix.dtype == np.float32 and gallery.norms.dtype == np.float32
    np.testing.assert_allclose(gallery.distances(probe), face_distance_f64(known, probe), atol=2e-5)


def test_match_threshold_and_nearest() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 0.1, 128), rng.normal(0, 0.1, 128)
    gallery = Gallery(["a", "a", "b"], [a, a + 0.001, b])
    near_a = a + 0.01
    m = gallery.match(near_a, threshold=0.5)
    assert (m.person_id, m.nearest) == ("a", "a") and m.distance < 0.2
    far = gallery.match(a + 1.0, threshold=0.5)
    assert far.person_id is None and far.nearest is not None and not far.known


def test_empty_gallery_matches_nobody() -> None:
    m = Gallery([], np.zeros((0, 128))).match(np.zeros(128))
    assert m.person_id is None and m.nearest is None


def test_mismatched_ids_refused() -> None:
    with pytest.raises(ValueError, match="ids"):
        Gallery(["a"], np.zeros((2, 128)))

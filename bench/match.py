"""1:N match time for galleries of 1k/10k/100k encodings, and accuracy on the sample probes.

    .venv/bin/python -m bench.match [--probes N] [--no-accuracy]

Prints one JSON object. Baseline measured in the same run: face_recognition's ``face_distance``
style (float64 ``linalg.norm`` over the whole gallery) vs Linli's float32 ``‖k‖²−2k·p+‖p‖²``
with precomputed norms.
"""

from __future__ import annotations

import os

# One BLAS thread: on a busy 2-core gateway, multi-threaded BLAS on a matrix-vector product is
# slower (measured 0.5 ms vs 12 ms per 10k probe under load); set before numpy loads.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import re
import time
from pathlib import Path
from typing import Any

import numpy as np

from edge.gate.matching import DEFAULT_THRESHOLD, Gallery, face_distance_f64

SHARED = Path(
    os.environ.get("LINLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)


def _time_per_probe(fn: Any, probes: Any, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for p in probes:
            fn(p)
        best = min(best, (time.perf_counter() - start) / len(probes))
    return best * 1000.0


def match_times(sizes: list[int], n_probes: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(42)
    out = []
    for size in sizes:
        known = rng.normal(0, 0.09, (size, 128)).astype(np.float32)
        ids = [f"p{i}" for i in range(size)]
        probes = known[rng.integers(0, size, n_probes)] + rng.normal(0, 0.01, (n_probes, 128))
        start = time.perf_counter()
        gallery = Gallery(ids, known)
        load_ms = (time.perf_counter() - start) * 1000
        known64 = known.astype(np.float64)
        ours = _time_per_probe(lambda p, g=gallery: g.match(p), probes)
        reps = 1 if size >= 100_000 else 3
        base = _time_per_probe(
            lambda p, k=known64: int(np.argmin(face_distance_f64(k, p))),
            probes[: 10 if size >= 100_000 else max(5, n_probes // 4)],
            reps,
        )
        agree = all(
            gallery.match(p).nearest == ids[int(np.argmin(face_distance_f64(known64, p)))]
            for p in probes[:20]
        )
        out.append(
            {
                "gallery": size,
                "float32_ms_per_probe": round(ours, 4),
                "baseline_float64_ms_per_probe": round(base, 4),
                "speedup": round(base / ours, 1) if ours > 0 else None,
                "same_nearest_as_baseline": agree,
                "gallery_load_ms": round(load_ms, 2),
            }
        )
    return out


def accuracy() -> dict[str, Any]:
    from edge.gate.enrol import encode_one, faces_in
    from edge.gate.faces import FaceEngine, load_rgb

    engine = FaceEngine()
    ids, vectors = [], []
    for path in sorted((SHARED / "faces" / "enroll").iterdir()):
        vector, _, _ = encode_one(engine, path)
        ids.append(re.sub(r"_\d+$", "", path.stem))
        vectors.append(vector)
    gallery = Gallery(ids, vectors)
    expected_total = found_right = wrong = unknown_faces = 0
    for path in sorted((SHARED / "faces" / "probe").iterdir()):
        expected = set(path.stem.replace("_small", "").split("+"))
        rgb = load_rgb(path)
        found = {}
        for face in faces_in(engine, rgb):
            m = gallery.match(engine.encode(rgb, face), DEFAULT_THRESHOLD)
            if m.person_id is None:
                unknown_faces += 1
            else:
                found[m.person_id] = m.distance
        expected_total += len(expected)
        found_right += len(expected & set(found))
        wrong += len(set(found) - expected)
    return {
        "threshold": DEFAULT_THRESHOLD,
        "probe_people": expected_total,
        "identified_correctly": found_right,
        "false_identifications": wrong,
        "faces_rejected_as_unknown": unknown_faces,
        "accuracy": round(found_right / expected_total, 3) if expected_total else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.match")
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--no-accuracy", action="store_true")
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "bench": "match",
        "unit": "ms per probe (best of runs)",
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "sizes": match_times([1_000, 10_000, 100_000], args.probes),
    }
    if not args.no_accuracy:
        result["accuracy_on_sample_probes"] = accuracy()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Gate decision latency: frame in → door command, on 640×480 frames with one face.

    .venv/bin/python -m bench.gate [--trials N]

Frames come from the sample clip (../shared/data/video), cropped around the person and scaled
to 640×480 (a gate camera's view: one face of ~120 px). Each trial starts a fresh gate at a
different point of the clip and feeds frames until the door opens; ``decision_frame_ms`` is the
processing time of the frame that issued the door command (motion gate, detection, landmarks,
quality, encoding if still voting, liveness, policy, event with thumbnail, door callback).
``first_face_to_command_ms`` sums the processing of every frame of the trial (the vote needs
several frames): what a resident feels. Nothing is moved between frames: the deciding frame
gets cheaper because every encoding does (dlib's ResNet run with numpy, edge/gate/resnet.py).

Same run, same frames, for comparison: ``dlib_encoder`` — the same pipeline with dlib's own
``compute_face_descriptor`` (the previous session's pipeline); the baseline — raw HOG detect
(upsample 0) + one dlib encoding per frame; ``encode_ms`` — one encoding, dlib vs numpy.
``deciding_frames_work`` counts, over all trials, the whole-frame detections and encodings the
deciding frames ran (load-independent); ``deciding_frame_steps_cpu_ms`` splits the deciding
frames that encode into detection, landmarks, encoding and the rest (CPU time of the thread).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.gate.capture import open_source, read_all
from edge.gate.enrol import encode_one
from edge.gate.faces import RGB, Box, Face, FaceEngine, Vec
from edge.gate.gate import Gate
from edge.gate.matching import Gallery
from edge.gate.pipeline import Pipeline, PipelineConfig
from edge.gate.policy import Decision, DoorConfig, PersonConfig, PolicyConfig

SHARED = Path(
    os.environ.get("LINLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


class TimedEngine(FaceEngine):
    """The engine, adding each step's thread CPU time (ms) to ``spent``; ``dlib_encoder``
    swaps in dlib's own encoder (the previous pipeline)."""

    def __init__(self, *, dlib_encoder: bool = False) -> None:
        super().__init__()
        self.dlib_encoder = dlib_encoder
        self.spent: defaultdict[str, float] = defaultdict(float)

    def _timed(self, step: str, started: float) -> None:
        self.spent[step] += (time.thread_time() - started) * 1000

    def detect(self, rgb: RGB, *, scale: float = 1.0, upsample: int = 0) -> list[Box]:
        t = time.thread_time()
        try:
            return super().detect(rgb, scale=scale, upsample=upsample)
        finally:
            self._timed("detect", t)

    def landmarks(self, rgb: RGB, box: Box) -> Face:
        t = time.thread_time()
        try:
            return super().landmarks(rgb, box)
        finally:
            self._timed("landmarks", t)

    def encode(self, rgb: RGB, face: Face, *, jitters: int = 1) -> Vec:
        t = time.thread_time()
        try:
            if self.dlib_encoder:
                return self.encode_dlib(rgb, face, jitters=jitters)
            return super().encode(rgb, face, jitters=jitters)
        finally:
            self._timed("encode", t)


def gate_frames() -> list[RGB]:
    """Frames 90–210 of the clip (the enrolled person in view), as 640×480 camera frames."""
    out = []
    for frame in read_all(open_source(str(SHARED / "video" / "short_hamilton_clip.mp4"))):
        if 90 <= frame.index <= 210:
            crop = frame.rgb[0:360, 60:540]  # 480×360 around the person → 4:3
            out.append(np.ascontiguousarray(cv2.resize(crop, (640, 480)), dtype=np.uint8))
    return out


def _recorder(times: list[float]) -> Callable[[Decision], None]:
    def opened(decision: Decision) -> None:
        times.append(time.perf_counter())

    return opened


def pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1)


def p50_95(values: list[float]) -> dict[str, float] | None:
    return {"p50": pct(values, 50), "p95": pct(values, 95)} if values else None


def trials(
    engine: TimedEngine,
    gallery: Gallery,
    policy: PolicyConfig,
    frames: list[RGB],
    config: PipelineConfig,
    count: int,
) -> dict[str, Any]:
    """``count`` fresh gates, each fed 40 frames from a different point of the clip."""
    decision_ms: list[float] = []
    decision_cpu_ms: list[float] = []
    total_ms: list[float] = []
    total_cpu_ms: list[float] = []
    frames_needed: list[int] = []
    no_decision = 0
    heavy = {"whole_frame_detections": 0, "encodings": 0}  # summed over the deciding frames
    steps: defaultdict[str, list[float]] = defaultdict(list)  # deciding frames that encode
    step = max(1, (len(frames) - 40) // count)
    for trial in range(count):
        opened: list[float] = []
        gate = Gate(
            door="main",
            camera="cam1",
            pipeline=Pipeline(engine, gallery, config),
            policy=policy,
            sink=lambda e: None,
            open_door=_recorder(opened),
        )
        spent = spent_cpu = 0.0
        start_index = trial * step
        for n, rgb in enumerate(frames[start_index : start_index + 40]):
            stats = gate.pipeline.stats
            full_before, encodings_before = stats.full_detections, stats.encodings
            engine.spent.clear()
            t_in, cpu_in = time.perf_counter(), time.thread_time()
            gate.frame(rgb, T0 + timedelta(seconds=n / 10))
            cpu_ms = (time.thread_time() - cpu_in) * 1000
            spent += (time.perf_counter() - t_in) * 1000
            spent_cpu += cpu_ms
            if opened:
                heavy["whole_frame_detections"] += stats.full_detections - full_before
                heavy["encodings"] += stats.encodings - encodings_before
                decision_ms.append((opened[0] - t_in) * 1000)
                decision_cpu_ms.append(cpu_ms)
                total_ms.append(spent)
                total_cpu_ms.append(spent_cpu)
                frames_needed.append(n + 1)
                if stats.encodings > encodings_before:
                    named = {k: engine.spent.get(k, 0.0) for k in ("detect", "landmarks", "encode")}
                    for key, value in named.items():
                        steps[key].append(value)
                    steps["rest"].append(cpu_ms - sum(named.values()))
                break
        else:
            no_decision += 1

    return {
        "trials_without_decision": no_decision,
        "decision_frame_ms": p50_95(decision_ms),
        "decision_frame_cpu_ms": p50_95(decision_cpu_ms),
        "first_face_to_command_ms": p50_95(total_ms),
        "first_face_to_command_cpu_ms": p50_95(total_cpu_ms),
        "frames_to_decision_median": float(np.median(frames_needed)) if frames_needed else None,
        "deciding_frames_work": heavy,
        "deciding_frame_steps_cpu_ms": {k: p50_95(v) for k, v in steps.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]  # this run adds ≈ 1 by the end
    engine = TimedEngine()
    vector, _, _ = encode_one(engine, SHARED / "faces" / "enroll" / "lin_manuel_miranda_1.png")
    others = np.random.default_rng(0).normal(0, 0.09, (999, 128)).astype(np.float32)
    gallery = Gallery(
        ["lin_manuel_miranda"] + [f"p{i}" for i in range(999)], np.vstack([vector, others])
    )
    policy = PolicyConfig(
        doors={"main": DoorConfig(door="main")},
        people={"lin_manuel_miranda": PersonConfig(person_id="lin_manuel_miranda")},
    )
    frames = gate_frames()

    product = trials(engine, gallery, policy, frames, PipelineConfig(), args.trials)
    # The previous session's pipeline on the same frames: dlib's own encoder.
    engine.dlib_encoder = True
    before = trials(engine, gallery, policy, frames, PipelineConfig(), args.trials)
    engine.dlib_encoder = False

    raw_ms, raw_cpu_ms, dlib_encode_ms, numpy_encode_ms = [], [], [], []
    for rgb in frames[:: max(1, len(frames) // 20)][:20]:
        t, cpu = time.perf_counter(), time.thread_time()
        boxes = engine.detect(rgb, upsample=0)
        if not boxes:
            continue
        face = engine.landmarks(rgb, boxes[0])
        started = time.thread_time()
        engine.encode_dlib(rgb, face)
        dlib_encode_ms.append((time.thread_time() - started) * 1000)
        raw_ms.append((time.perf_counter() - t) * 1000)
        raw_cpu_ms.append((time.thread_time() - cpu) * 1000)
        started = time.thread_time()
        engine.encode(rgb, face)
        numpy_encode_ms.append((time.thread_time() - started) * 1000)

    result: dict[str, Any] = {
        "bench": "gate",
        "unit": "ms",
        "frame": "640x480, one face (~120 px), HOG upsample 0",
        "pipeline": "defaults (encodings by dlib's ResNet run with numpy, edge/gate/resnet.py; "
        "split_heavy_steps; max_encodings_per_frame=1). No work is moved between frames: "
        "first_face_to_command_ms is the same measurement as before. dlib_encoder = the "
        "same pipeline with dlib's compute_face_descriptor (the previous session's), same frames",
        "trials": args.trials,
        **product,
        "dlib_encoder": before,
        "encode_cpu_ms": {"dlib": p50_95(dlib_encode_ms), "numpy": p50_95(numpy_encode_ms)},
        "baseline_detect_plus_encode_ms": p50_95(raw_ms),
        "baseline_detect_plus_encode_cpu_ms": p50_95(raw_cpu_ms),
        "load_average_1min_at_start": round(load_at_start, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target_p95_ms": 150,
        "gallery_size": len(gallery),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

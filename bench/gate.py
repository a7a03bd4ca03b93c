"""Gate decision latency: frame in → door command, on 640×480 frames with one face.

    .venv/bin/python -m bench.gate [--trials N]

Frames come from the sample clip (../shared/data/video), cropped around the person and scaled
to 640×480 (a gate camera's view: one face of ~120 px). Each trial starts a fresh gate at a
different point of the clip and feeds frames until the door opens; ``decision_frame_ms`` is the
processing time of the frame that issued the door command (motion gate, detection, landmarks,
quality, encoding if still voting, liveness, policy, event with thumbnail, door callback).
``first_face_to_command_ms`` sums the processing of every frame of the trial (the vote needs
several frames). Baseline, same run: raw HOG detect (upsample 0) + one encoding per frame; and
``without_split_heavy_steps``: the same trials with the pipeline's frame budget switched off
(the behaviour before it existed), for comparison. ``deciding_frames_work`` counts, over all
trials, the whole-frame detections and encodings the deciding frames ran (load-independent).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.gate.capture import open_source, read_all
from edge.gate.enrol import encode_one
from edge.gate.faces import RGB, FaceEngine
from edge.gate.gate import Gate
from edge.gate.matching import Gallery
from edge.gate.pipeline import Pipeline, PipelineConfig
from edge.gate.policy import Decision, DoorConfig, PersonConfig, PolicyConfig

SHARED = Path(
    os.environ.get("LINLI_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
)
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


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


def trials(
    engine: FaceEngine,
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
    frames_needed: list[int] = []
    no_decision = 0
    heavy = {"whole_frame_detections": 0, "encodings": 0}  # summed over the deciding frames
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
        spent = 0.0
        start_index = trial * step
        for n, rgb in enumerate(frames[start_index : start_index + 40]):
            stats = gate.pipeline.stats
            full_before, encodings_before = stats.full_detections, stats.encodings
            t_in, cpu_in = time.perf_counter(), time.process_time()
            gate.frame(rgb, T0 + timedelta(seconds=n / 10))
            spent += (time.perf_counter() - t_in) * 1000
            if opened:
                heavy["whole_frame_detections"] += stats.full_detections - full_before
                heavy["encodings"] += stats.encodings - encodings_before
                decision_ms.append((opened[0] - t_in) * 1000)
                decision_cpu_ms.append((time.process_time() - cpu_in) * 1000)
                total_ms.append(spent)
                frames_needed.append(n + 1)
                break
        else:
            no_decision += 1

    def p50_95(values: list[float]) -> dict[str, float] | None:
        return {"p50": pct(values, 50), "p95": pct(values, 95)} if values else None

    return {
        "trials_without_decision": no_decision,
        "decision_frame_ms": p50_95(decision_ms),
        "decision_frame_cpu_ms": p50_95(decision_cpu_ms),
        "first_face_to_command_ms": p50_95(total_ms),
        "frames_to_decision_median": float(np.median(frames_needed)) if frames_needed else None,
        "deciding_frames_work": heavy,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gate")
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args(argv)
    engine = FaceEngine()
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
    # The previous session's pipeline on the same frames: a whole-frame detection and a
    # deciding encoding could fall on the same frame.
    before = trials(
        engine, gallery, policy, frames, PipelineConfig(split_heavy_steps=False), args.trials
    )

    raw_ms, raw_cpu_ms = [], []
    for rgb in frames[:: max(1, len(frames) // 20)][:20]:
        t, cpu = time.perf_counter(), time.process_time()
        boxes = engine.detect(rgb, upsample=0)
        if boxes:
            engine.encode(rgb, engine.landmarks(rgb, boxes[0]))
        raw_ms.append((time.perf_counter() - t) * 1000)
        raw_cpu_ms.append((time.process_time() - cpu) * 1000)

    result: dict[str, Any] = {
        "bench": "gate",
        "unit": "ms",
        "frame": "640x480, one face (~120 px), HOG upsample 0",
        "pipeline": "defaults: split_heavy_steps (no whole-frame detection on a frame that takes "
        "a deciding vote), max_encodings_per_frame=1; without_split_heavy_steps = the previous "
        "pipeline on the same frames, same measurement",
        "trials": args.trials,
        **product,
        "without_split_heavy_steps": before,
        "baseline_detect_plus_encode_ms": {"p50": pct(raw_ms, 50), "p95": pct(raw_ms, 95)},
        "baseline_detect_plus_encode_cpu_ms": {
            "p50": pct(raw_cpu_ms, 50),
            "p95": pct(raw_cpu_ms, 95),
        },
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target_p95_ms": 150,
        "gallery_size": len(gallery),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

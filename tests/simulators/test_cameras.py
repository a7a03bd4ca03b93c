"""Virtual cameras: the sample clip through the real gate pipeline of a simulated gateway."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from linli.services import Mosquitto
from protocols.messages import AccessDecision, AccessEvent, AccessKind
from simulators.cameras import frames
from simulators.errors import SimulatorError
from simulators.runner import RunOptions, ScenarioRun
from simulators.scenario import SITES, parse_scenario
from tests.simulators.test_runner import Recorder


def test_frames_of_an_image_folder(shared_data: Path, tmp_path: Path) -> None:
    probe = shared_data / "faces" / "probe"
    images = [p for p in probe.iterdir() if p.suffix.lower() in {".jpg", ".jpeg", ".png"}]
    got = list(frames(probe))
    assert len(got) == len(images)
    assert all(f.ndim == 3 and f.shape[2] == 3 for f in got)
    with pytest.raises(SimulatorError, match="no images"):
        list(frames(tmp_path))
    with pytest.raises(SimulatorError, match="neither a folder nor a file"):
        list(frames(tmp_path / "missing.mp4"))


def test_video_frames_every_nth(shared_data: Path) -> None:
    clip = shared_data / "video" / "short_hamilton_clip.mp4"
    assert len(list(frames(clip, every=25))) == 11  # 275 frames


@pytest.mark.faces
@pytest.mark.anyio
async def test_sample_clip_through_the_real_gate_pipeline(
    shared_data: Path, mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    from edge.gate.bundle import build
    from edge.gate.faces import FaceEngine, load_rgb

    engine = FaceEngine()
    rgb = load_rgb(shared_data / "faces" / "enroll" / "lin_manuel_miranda_1.png")
    face = engine.faces(rgb, upsample=1)[0]
    bundle = build(
        1,
        datetime.now(UTC),
        {"lin_manuel_miranda": ("Lin-Manuel Miranda", [engine.encode(rgb, face)])},
    )
    gallery = tmp_path / "gallery.json"
    gallery.write_bytes(bundle.to_bytes())
    scenario = parse_scenario(
        {
            "name": "clip",
            "site": str(SITES / "demo.yaml"),
            "clock": {"settle": "1s"},
            "grace": "1s",
            "steps": [
                {
                    "at": 0,
                    "camera": {
                        "gateway": "gw-gate",
                        "camera": "cam-gate",
                        "door": "gate-door",
                        "source": str(shared_data / "video" / "short_hamilton_clip.mp4"),
                        "gallery": str(gallery),
                        "fps": 30,
                        "every": 2,
                    },
                }
            ],
        }
    )
    recorder = Recorder(mosquitto.port, site)
    try:
        run = ScenarioRun(
            scenario, RunOptions(mqtt_port=mosquitto.port, site=site, state_dir=tmp_path)
        )
        await run.run()
    finally:
        recorder.close()
    events = [m for m in recorder.of("gw-gate") if isinstance(m, AccessEvent)]
    granted = [
        e
        for e in events
        if e.decision is AccessDecision.GRANTED and e.person_id == "lin_manuel_miranda"
    ]
    assert granted, [(e.kind, e.decision, e.reason, e.person_id) for e in events]
    assert any(e.kind is AccessKind.UNKNOWN_FACE for e in events)
    assert not any(e.attrs.get("simulated") for e in events)  # real pipeline, not the cheap mode

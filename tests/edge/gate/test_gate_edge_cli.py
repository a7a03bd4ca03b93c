"""``linli edge --config`` with a ``gates:`` section: the real entry point runs the gate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from edge.__main__ import main
from edge.gate.bundle import Bundle
from edge.testing import Subscriber
from linli.services import Mosquitto
from protocols.messages import AccessDecision, AccessEvent, AccessKind
from protocols.topics import Channel

pytestmark = pytest.mark.faces
ROOT = Path(__file__).resolve().parents[3]


def gate_config(tmp_path: Path, port: int, site: str, source: Path) -> dict[str, Any]:
    return {
        "site": site,
        "gateway": "gw1",
        "state_dir": str(tmp_path / "state"),
        "broker": {"port": port, "reconnect_min": 0.1, "reconnect_max": 1.0},
        "outbox": {"synchronous": "normal"},
        "rules": {"enabled": False},
        "actuators": {"doors": [{"id": "main", "open_seconds": 5}]},
        "gates": [
            {
                "door": "main",
                "camera": "cam1",
                "source": str(source),
                "stride": 3,
                "policy": {
                    "doors": {"main": {"door": "main"}},
                    "people": {"lin_manuel_miranda": {"person_id": "lin_manuel_miranda"}},
                },
                "pipeline": {"upsample": 1, "quality": {"min_face_px": 40}},
            }
        ],
    }


def access_events(sub: Subscriber) -> list[AccessEvent]:
    return [d.message for d in sub.snapshot(Channel.ACCESS) if isinstance(d.message, AccessEvent)]


def test_linli_edge_runs_the_gate_on_the_sample_video(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    clip: Path,
    bundle: Bundle,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    config = gate_config(tmp_path, mosquitto.port, site, clip)
    state = tmp_path / "state"
    state.mkdir()
    # The gallery a previous gallery.sync left behind: the agent loads it at start.
    (state / "gallery.json").write_bytes(bundle.to_bytes())
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    sub = subscriber_for(mosquitto, site)
    proc = subprocess.Popen(
        [sys.executable, "-m", "linli", "edge", "--config", str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def seen(_: object) -> bool:
            events = access_events(sub)
            return any(e.decision is AccessDecision.GRANTED for e in events) and any(
                e.kind is AccessKind.UNKNOWN_FACE for e in events
            )

        sub.wait_for(seen, within=240)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    events = access_events(sub)
    granted = [e for e in events if e.decision is AccessDecision.GRANTED]
    assert [e.person_id for e in granted] == ["lin_manuel_miranda"], output
    assert granted[0].door == "main" and granted[0].camera == "cam1"
    unknown = [e for e in events if e.kind is AccessKind.UNKNOWN_FACE]
    assert unknown and all(e.person_id is None for e in unknown)
    assert proc.returncode == 0, output


def other_door(gate: dict[str, Any]) -> None:
    """A door the policy knows but the gateway has no actuator for."""
    gate["door"] = "side"
    gate["policy"]["doors"]["side"] = {"door": "side"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (other_door, "gates.0.door"),
        (lambda g: g.update(frames=3), "gates.0.frames"),
        (lambda g: g["policy"]["doors"]["main"].update(methods=["face"]), "gates.0.policy"),
        (lambda g: g.update(stride=0), "gates.0.stride"),
    ],
)
def test_bad_gates_config_is_refused_naming_the_field(
    tmp_path: Path,
    clip: Path,
    capsys: pytest.CaptureFixture[str],
    change: Callable[[dict[str, Any]], None],
    field: str,
) -> None:
    config = gate_config(tmp_path, 1883, "s1", clip)
    change(config["gates"][0])
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["--config", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert field in err, err


def test_gates_config_is_valid_with_check(
    tmp_path: Path, clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(yaml.safe_dump(gate_config(tmp_path, 1883, "s1", clip)))
    assert main(["--config", str(path), "--check"]) == 0
    assert "1 gate(s)" in capsys.readouterr().out

"""bench/outbox_replay stays runnable: a tiny run prints one JSON object with its figures."""

from __future__ import annotations

import json

import pytest

from bench import outbox_replay


def test_tiny_replay_bench_prints_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert outbox_replay.main(["--messages", "40", "--readings", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["bench"] == "outbox_replay" and out["readings"] == 200
    assert out["replayed_marked_historical"] == 40, "an outage backlog replays as historical"
    assert out["replay_readings_per_s"] > 0 and out["baseline_bare_paho_readings_per_s"] > 0

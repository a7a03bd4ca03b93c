"""`make demo` runs `linli demo`: the smoke alert must be on the board within 30 s, and Ctrl-C
must stop everything it started (cloud, its split-ingest receiver process, simulated gateways,
broker)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest


def _running(pattern: str) -> bool:
    out = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True)
    return bool(out.stdout.strip())


def _receivers(pid: int) -> list[psutil.Process]:
    """The demo's split-ingest receiver processes (children of the demo, not anyone else's)."""
    return [
        child
        for child in psutil.Process(pid).children(recursive=True)
        if "cloud.ingest.receive" in " ".join(child.cmdline())
    ]


def _gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("broker", ["mosquitto", "amqtt"])
def test_demo_shows_smoke_alert_and_stops_on_ctrl_c(tmp_path: Path, broker: str) -> None:
    """mosquitto when installed; the embedded amqtt (MQTT 3.1.1) on a machine without it."""
    state = tmp_path / "demo"
    argv = ["demo", "--port", "0", "--state-dir", str(state), "--smoke-after", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "linli", *argv, "--broker", broker],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stdout is not None
    lines: list[str] = []
    receivers: list[psutil.Process] = []
    seen = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            match = re.search(r"Alert on the board after ([\d.]+) s", line)
            if match:
                seen = float(match.group(1))
                break
        text = "".join(lines)
        assert "Dashboard:  http://127.0.0.1:" in text, text
        assert re.search(r"Log in as:  demo-admin  /  \S{12,}", text), text
        assert seen is not None, text
        assert seen < 30, text
        assert '"rule_id": "smoke-alarm"' in text
        assert f"({broker} broker on 127.0.0.1:" in text
        assert _running(str(state / "mosquitto")) == (broker == "mosquitto")
        # Split ingest, as `linli cloud run` has it: the messages came through the receiver.
        receivers = _receivers(proc.pid)
        assert len(receivers) == 1, [r.cmdline() for r in receivers]
        assert (state / "ingest-rawlog-linli-demo-cloud.sqlite").exists()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:  # a failed assertion: still stop the demo's broker with it
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    # Nothing the demo started may outlive it.
    time.sleep(0.5)
    assert not _running(str(state / "mosquitto"))
    assert receivers and all(_gone(r) for r in receivers)

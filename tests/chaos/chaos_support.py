"""Processes for the chaos suite: a real edge agent and a real ingest, each a subprocess.

Both run exactly as in production (``python -m edge --config FILE``, ``python -m cloud.ingest``)
so that ``kill -9`` hits a real process with its real buffers, sockets and SQLite outbox.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


class Child:
    """One subprocess with its log file; :meth:`kill9` and :meth:`stop` wait for the exit."""

    def __init__(self, argv: list[str], log: Path) -> None:
        self.argv = argv
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def kill9(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, "process already gone"
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (kills on timeout)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                return -9
        return self.proc.returncode

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def ingest_process(
    db_url: str, port: int, site: str, client_id: str, log: Path, group: str | None = None
) -> Child:
    argv = [
        sys.executable,
        "-m",
        "cloud.ingest",
        "--db",
        db_url,
        "--port",
        str(port),
        "--client-id",
        client_id,
        "--site",
        site,
        "--batch-size",
        "50",
        "--no-create-schema",
    ]
    if group is not None:
        argv += ["--shared-group", group]
    return Child(argv, log)


def agent_config(
    path: Path,
    *,
    site: str,
    gateway: str,
    port: int,
    state_dir: Path,
    devices: int,
    interval: float,
    base: int,
) -> Path:
    """An edge config with ``devices`` counter devices read every ``interval`` seconds.

    Every read of every device is reported (mode ``change``: a counter always changes), and
    one read of all devices is one telemetry message (``max_readings`` = ``devices``).
    """
    config = {
        "site": site,
        "gateway": gateway,
        "state_dir": str(state_dir),
        "log_level": "INFO",
        "broker": {"port": port, "reconnect_min": 0.2, "reconnect_max": 1.0, "keepalive": 5},
        "outbox": {
            "synchronous": "normal",
            "drain_timeout": 20.0,
            "historical_after": 5.0,
            "max_readings": devices,
        },
        "report": {"mode": "change", "deadband": 0.0},
        "health": {"interval": 3600},
        "rules": {"enabled": False},
        "actuators": {"siren": None},
        "drivers": [
            {
                "type": "simulated",
                "name": "counters",
                "interval": interval,
                "model": "tests.chaos.counter:make_counter",
                "devices": [
                    {"id": f"c-{i:03d}", "kind": "temperature", "params": {"base": base}}
                    for i in range(devices)
                ],
            }
        ],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def agent_process(config: Path, log: Path) -> Child:
    return Child([sys.executable, "-m", "edge", "--config", str(config)], log)


def wait_until(predicate: Callable[[], bool], within: float, what: str, *logs: Child) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    tails = "\n".join(f"--- {c.log.name}:\n{c.tail()}" for c in logs)
    raise AssertionError(f"{what}: not within {within:.0f}s\n{tails}")

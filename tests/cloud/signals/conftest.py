"""Signals tests: changes written by a real second Python process."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any, Protocol

from sqlalchemy.engine import Engine
from starlette.testclient import WebSocketTestSession

from cloud.notify.hub import Hub

END = {"type": "alert", "end": True}
"""Published after the events a test waits for: everything before it on a socket has arrived."""


class Follower(Protocol):
    """LiveShare or LiveIncidents: ``heard`` counts events published for changes elsewhere."""

    @property
    def heard(self) -> int: ...


def wait_heard(follower: Follower, count: int, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while follower.heard < count:
        assert time.monotonic() < deadline, f"{follower.heard} of {count} events heard"
        time.sleep(0.05)


def until_end(ws: WebSocketTestSession) -> list[dict[str, Any]]:
    """The events on ``ws`` before :data:`END`."""
    seen: list[dict[str, Any]] = []
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message == END:
            return seen
        seen.append(message)


def heard_on(
    follower: Follower, hub: Hub, ws: WebSocketTestSession, count: int
) -> list[dict[str, Any]]:
    """Once ``follower`` has heard ``count`` events in all, what ``ws`` received meanwhile."""
    wait_heard(follower, count)
    hub.publish(END)
    return until_end(ws)


def run_elsewhere(script: str, engine: Engine, *args: str) -> None:
    """Run ``script`` (Python source; ``sys.argv[1]`` = the database URL, then ``args``) as a
    process of its own against ``engine``'s database."""
    url = engine.url.render_as_string(hide_password=False)
    done = subprocess.run(
        [sys.executable, "-c", script, url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]

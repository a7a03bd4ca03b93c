"""Signals tests: changes written by a real second Python process."""

from __future__ import annotations

import subprocess
import sys

from sqlalchemy.engine import Engine


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

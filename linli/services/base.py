"""Shared plumbing for the local service launchers."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class ServiceError(RuntimeError):
    """A local server failed to start or stop; carries the tail of its log."""


class ServiceUnavailable(ServiceError):
    """The server's binary is not installed on this machine."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_binary(name: str, *extra_dirs: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.exists():
            return str(candidate)
    raise ServiceUnavailable(f"{name} is not installed (see scripts/install-services.sh)")


def wait_for_port(port: int, timeout: float, alive: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise ServiceError(f"exited during start-up; log tail:\n{tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"port {port} not open after {timeout}s; log tail:\n{tail(log)}")


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def chown_for(user: str, *paths: Path) -> bool:
    """As root, hand ``paths`` to ``user`` (daemons that drop privileges). True if done."""
    if os.geteuid() != 0:
        return False
    try:
        shutil.chown(paths[0], user, user)
    except (LookupError, PermissionError):
        return False
    for path in paths[1:]:
        shutil.chown(path, user, user)
    return True


def spawn(argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    try:
        return subprocess.Popen(
            list(argv),
            stdout=handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, not the server
        )
    finally:
        handle.close()


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 10.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)

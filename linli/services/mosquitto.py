"""A real mosquitto broker on a free loopback port."""

from __future__ import annotations

import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from linli.services.base import (
    ServiceError,
    chown_for,
    find_binary,
    free_port,
    spawn,
    terminate,
    wait_for_port,
)


class Mosquitto:
    """``with Mosquitto() as broker: broker.port``; ``stop()``/``start()`` keep port and state.

    Persistence is on so that persistent sessions (QoS1, clean_session False) survive a
    broker restart, and the offline queue is unbounded so a restarted consumer misses nothing.
    ``extra_conf`` lines are appended (e.g. ACL or password settings).
    """

    def __init__(
        self, port: int | None = None, workdir: Path | None = None, extra_conf: str = ""
    ) -> None:
        self.binary = find_binary("mosquitto", "/usr/sbin")
        self.port = port or free_port()
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="linli-mosquitto-")
            workdir = Path(self._tmp.name)
        self.dir: Path = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "mosquitto.log"
        self.conf = self.dir / "mosquitto.conf"
        self.extra_conf = extra_conf
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _write_conf(self) -> None:
        data = self.dir / "data"
        data.mkdir(exist_ok=True)
        self.log.touch()
        # Started as root, mosquitto drops to user "mosquitto": hand it its own files.
        owned = chown_for("mosquitto", self.dir, data, self.log)
        user = "" if owned else "user root\n" if _is_root() else ""
        self.conf.write_text(
            f"{user}"
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {data}/\n"
            "autosave_interval 5\n"
            "max_queued_messages 0\n"
            "max_queued_bytes 0\n"
            "max_inflight_messages 100\n"
            "set_tcp_nodelay true\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            f"{self.extra_conf}\n"
        )

    def start(self, timeout: float = 10.0) -> None:
        if self.running:
            return
        self._write_conf()
        self._proc = spawn([self.binary, "-c", str(self.conf)], self.dir / "stdout.log")
        proc = self._proc
        try:
            wait_for_port(self.port, timeout, lambda: proc.poll() is None, self.log)
        except ServiceError:
            terminate(proc)
            raise

    def stop(self) -> None:
        terminate(self._proc)
        self._proc = None

    def kill(self) -> None:
        """Stop without saving state, as a power cut would."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> Mosquitto:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()


def _is_root() -> bool:
    import os

    return os.geteuid() == 0

"""Debian's VictoriaMetrics, standing in as the InfluxDB-protocol server.

No InfluxDB 2.x/3.x server is installable on these machines; VictoriaMetrics accepts
influxdb-client's ``/api/v2/write`` (numeric fields only; ``measurement_field`` naming).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from linli.services.base import (
    ServiceError,
    find_binary,
    free_port,
    spawn,
    terminate,
    wait_for_port,
)


class VictoriaMetrics:
    def __init__(self, port: int | None = None) -> None:
        self.binary = find_binary("victoria-metrics", "/usr/bin")
        self.port = port or free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="linli-vm-")
        self.dir = Path(self._tmp.name)
        self.log = self.dir / "victoria.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        self._proc = spawn(
            [
                self.binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={self.dir / 'data'}",
                "-retentionPeriod=100y",
                "-search.latencyOffset=0s",
                "-search.disableCache",
            ],
            self.log,
        )
        proc = self._proc
        try:
            wait_for_port(self.port, timeout, lambda: proc.poll() is None, self.log)
        except ServiceError:
            terminate(proc)
            raise

    def stop(self) -> None:
        terminate(self._proc)
        self._proc = None

    def __enter__(self) -> VictoriaMetrics:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
        self._tmp.cleanup()

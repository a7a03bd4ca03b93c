"""Sensors that talk over a serial line (pyserial): one reading per text line.

Line formats, one per line, UTF-8:

    DEVICE METRIC VALUE                           e.g.  "smoke-3 smoke 1", "t-1 temperature 21.5"
    {"device": "t-1", "metric": "temperature", "value": 21.5}

Binary values may be ``1/0``, ``true/false``, ``on/off``. A line for an unknown device, an
unknown metric or a bad value is logged, counted in ``bad_lines`` and skipped. ``url`` is any
pyserial URL: ``/dev/ttyUSB0``, ``/dev/pts/3``, ``loop://``, ``rfc2217://host:port``.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from edge.config import SerialDriverConfig
from edge.drivers.base import DeviceInfo, Driver, Sample
from edge.errors import DriverError
from protocols.kinds import metric

log = logging.getLogger(__name__)

MAX_LINE = 1024
TRUE = {"1", "true", "on", "yes"}
FALSE = {"0", "false", "off", "no"}


class BadLine(ValueError):
    pass


class SerialDriver(Driver):
    def __init__(self, config: SerialDriverConfig) -> None:
        super().__init__(config.name, config.interval)
        self.config = config
        self.kinds = {d.id: d.kind for d in config.devices}
        self._info = [DeviceInfo(d.id, d.kind) for d in config.devices]
        self.port: Any = None
        self._buffer = b""
        self.bad_lines = 0

    @classmethod
    def from_config(cls, config: SerialDriverConfig) -> SerialDriver:
        return cls(config)

    @property
    def devices(self) -> list[DeviceInfo]:
        return self._info

    async def open(self) -> None:
        import serial

        try:
            self.port = serial.serial_for_url(
                self.config.url, baudrate=self.config.baudrate, timeout=0
            )
        except (serial.SerialException, ValueError) as exc:
            raise DriverError(f"serial driver {self.name}: {exc}") from exc
        self._buffer = b""

    async def close(self) -> None:
        if self.port is not None:
            self.port.close()
            self.port = None

    async def read(self, now: float) -> list[Sample]:
        import serial

        if self.port is None:
            raise DriverError(f"serial driver {self.name}: not open")
        try:
            data = self.port.read(max(1, self.port.in_waiting))
        except (serial.SerialException, OSError) as exc:
            raise DriverError(f"serial driver {self.name}: {exc}") from exc
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        if len(self._buffer) > MAX_LINE:
            self.bad_lines += 1
            log.warning("serial %s: line over %d bytes dropped", self.name, MAX_LINE)
            self._buffer = b""
        out = []
        for raw in lines:
            text = raw.decode("utf-8", "replace").strip()
            if not text:
                continue
            try:
                out.append(self.parse(text, now))
            except BadLine as exc:
                self.bad_lines += 1
                log.warning("serial %s: bad line %r: %s", self.name, text[:80], exc)
        return out

    def parse(self, text: str, now: float) -> Sample:
        """One line → a sample; raises :class:`BadLine`."""
        if text.startswith("{"):
            try:
                obj = json.loads(text)
                device, name, raw = str(obj["device"]), str(obj["metric"]), obj["value"]
            except (ValueError, KeyError, TypeError) as exc:
                raise BadLine(f"bad JSON line: {exc}") from exc
        else:
            parts = text.split()
            if len(parts) != 3:
                raise BadLine("expected 'DEVICE METRIC VALUE'")
            device, name, raw = parts
        kind = self.kinds.get(device)
        if kind is None:
            raise BadLine(f"unknown device {device!r}")
        info = metric(kind, name)
        if info is None:
            raise BadLine(f"kind {kind.value} has no metric {name!r}")
        return Sample(device, kind, name, _value(raw, info.binary), now)


def _value(raw: object, binary: bool) -> float | bool:
    if binary:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in TRUE:
            return True
        if text in FALSE:
            return False
        raise BadLine(f"not a binary value: {raw!r}")
    if isinstance(raw, bool):
        raise BadLine(f"not a number: {raw!r}")
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError) as exc:
        raise BadLine(f"not a number: {raw!r}") from exc
    if not math.isfinite(value):
        raise BadLine(f"not a finite number: {raw!r}")
    return value

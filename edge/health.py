"""Gateway health as telemetry of the gateway itself (device = gateway id, kind GATEWAY)."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from edge.outbox import Outbox

log = logging.getLogger(__name__)

THERMAL_ZONE = Path("/sys/class/thermal/thermal_zone0/temp")  # Raspberry Pi: the SoC


def cpu_temperature(zone: Path = THERMAL_ZONE) -> float | None:
    """SoC temperature in °C, or None where the machine does not expose one."""
    try:
        return round(int(zone.read_text().strip()) / 1000.0, 1)
    except (OSError, ValueError):
        pass
    try:
        import psutil

        sensors = psutil.sensors_temperatures()
    except (ImportError, AttributeError, OSError):
        return None
    for entries in sensors.values():
        if entries:
            return round(float(entries[0].current), 1)
    return None


class HealthProbe:
    def __init__(self, disk: Path | None = None, zone: Path = THERMAL_ZONE) -> None:
        self.disk = disk or Path("/")
        self.zone = zone

    def measure(self, outbox: Outbox, reconnects: int) -> dict[str, float]:
        """Metric name → value, names as in ``kinds.METRICS[GATEWAY]``."""
        values: dict[str, float] = {
            "outbox_depth": float(outbox.depth),
            "outbox_age": round(outbox.oldest_age(), 3),
            "dropped": float(outbox.counters["dropped_messages"]),
            "reconnects": float(reconnects),
        }
        temp = cpu_temperature(self.zone)
        if temp is not None:
            values["cpu_temperature"] = temp
        try:
            values["disk_free"] = round(shutil.disk_usage(self.disk).free / 1e6, 1)
        except OSError as exc:
            log.warning("disk usage of %s unavailable: %s", self.disk, exc)
        return values

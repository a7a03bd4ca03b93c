"""Gateway health figures, measured from a real outbox and file system."""

from __future__ import annotations

from pathlib import Path

from edge.envelope import Stamper
from edge.health import HealthProbe, cpu_temperature
from edge.outbox import Outbox
from protocols.messages import DeviceEvent


def test_cpu_temperature_from_a_thermal_zone_file(tmp_path: Path) -> None:
    zone = tmp_path / "temp"
    zone.write_text("48312\n")
    assert cpu_temperature(zone) == 48.3
    zone.write_text("garbage")
    value = cpu_temperature(zone)  # falls back to psutil; None where the machine has no sensor
    assert value is None or -40 < value < 130


def test_probe_reports_outbox_and_disk(tmp_path: Path) -> None:
    now = [1000.0]
    box = Outbox.open(tmp_path / "o.db", 10**9, clock=lambda: now[0])
    s = Stamper()
    box.put(s.stamp(DeviceEvent, device="d-1", event="x.y"))
    now[0] = 1012.5
    box.put(s.stamp(DeviceEvent, device="d-1", event="x.z"))
    zone = tmp_path / "temp"
    zone.write_text("51000")
    values = HealthProbe(tmp_path, zone).measure(box, reconnects=3)
    assert values["outbox_depth"] == 2
    assert values["outbox_age"] == 12.5
    assert values["dropped"] == 0
    assert values["reconnects"] == 3
    assert values["cpu_temperature"] == 51.0
    assert values["disk_free"] > 0

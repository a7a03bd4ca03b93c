"""Virtual devices: deterministic, realistic, with faults and overrides."""

from __future__ import annotations

import statistics

import pytest

from protocols.kinds import METRICS, DeviceKind
from simulators.devices import Fault, make_device
from simulators.errors import SimulatorError

# 2026-06-01 00:00 UTC = 08:00 in UTC+8
T0 = 1_780_272_000.0


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_every_kind_reports_its_metrics_with_the_right_types(kind: DeviceKind) -> None:
    dev = make_device(kind, f"d-{kind.value}", seed=3)
    pairs = dev.read(T0)
    assert [name for name, _ in pairs] == [m.name for m in METRICS[kind]]
    for (name, value), m in zip(pairs, METRICS[kind], strict=True):
        assert isinstance(value, bool) == m.binary, name


def test_same_seed_same_signal_other_seed_differs() -> None:
    times = [T0 + 37.0 * i for i in range(200)]
    a = [make_device("temperature", "t1", seed=1).read(t) for t in times]
    b = [make_device("temperature", "t1", seed=1).read(t) for t in times]
    c = [make_device("temperature", "t1", seed=2).read(t) for t in times]
    assert a == b
    assert a != c


def test_temperature_follows_a_daily_cycle_in_local_time() -> None:
    dev = make_device("temperature", "t1", tz_offset_h=8)
    day = T0 - 8 * 3600  # local midnight
    afternoon = statistics.mean(
        float(dev.read(day + 15 * 3600 + i)[0][1]) for i in range(0, 600, 30)
    )
    dawn = statistics.mean(float(dev.read(day + 3 * 3600 + i)[0][1]) for i in range(0, 600, 30))
    assert afternoon - dawn > 6.0


def test_battery_decays_over_time() -> None:
    dev = make_device("smoke", "s1", battery=90, battery_per_day=0.1, epoch=T0)
    assert dict(dev.read(T0))["battery"] == 90.0
    assert dict(dev.read(T0 + 100 * 86400))["battery"] == pytest.approx(80.0)


def test_pir_reports_more_motion_in_the_evening_than_at_night() -> None:
    dev = make_device("pir", "p1", seed=5)
    day = T0 - 8 * 3600
    evening = sum(bool(dev.read(day + 19 * 3600 + i)[0][1]) for i in range(0, 7200, 5))
    night = sum(bool(dev.read(day + 3 * 3600 + i)[0][1]) for i in range(0, 7200, 5))
    assert evening > 3 * max(night, 1)


def test_force_overrides_until_released() -> None:
    dev = make_device("smoke", "s1")
    dev.force("smoke", True)
    assert dict(dev.read(T0))["smoke"] is True
    dev.force("smoke", None)
    assert dict(dev.read(T0))["smoke"] is False


def test_force_rejects_unknown_metric_and_wrong_type() -> None:
    dev = make_device("smoke", "s1")
    with pytest.raises(SimulatorError, match="no metric 'temperature'"):
        dev.force("temperature", 80.0)
    with pytest.raises(SimulatorError, match="binary"):
        dev.force("smoke", 1.0)
    with pytest.raises(SimulatorError, match="finite number"):
        make_device("heat", "h1").force("temperature", True)


def test_actuate_sets_actuator_state() -> None:
    lock = make_device("door_lock", "l1")
    assert dict(lock.read(T0))["locked"] is True
    lock.actuate("locked", False)
    assert dict(lock.read(T0))["locked"] is False


def test_stuck_sensor_freezes_its_value() -> None:
    dev = make_device("temperature", "t1")
    dev.inject(Fault.STUCK, start=T0, end=T0 + 3600)
    values = {dev.read(T0 + 60.0 * i)[0][1] for i in range(60)}
    assert len(values) == 1
    assert dev.read(T0 + 7200)[0][1] != dev.read(T0 + 7260)[0][1]


def test_dead_battery_reports_low_then_goes_silent() -> None:
    dev = make_device("smoke", "s1")
    dev.inject(Fault.DEAD_BATTERY, start=T0)
    assert dict(dev.read(T0 + 1))["battery"] == 1.0
    assert dev.read(T0 + 3600) == []
    dev.clear(Fault.DEAD_BATTERY)
    assert dev.read(T0 + 3600) != []


def test_offline_window_reads_nothing() -> None:
    dev = make_device("gas", "g1")
    dev.inject(Fault.OFFLINE, start=T0, end=T0 + 600)
    assert dev.read(T0 - 1) != []
    assert dev.read(T0 + 300) == []
    assert dev.read(T0 + 600) != []
    assert dev.faults(T0 + 1) == [Fault.OFFLINE]


def test_noise_burst_widens_the_spread() -> None:
    calm = make_device("hydrant", "h1", seed=9)
    noisy = make_device("hydrant", "h1", seed=9)
    noisy.inject(Fault.NOISE_BURST, start=T0, magnitude=50)
    spread = [
        statistics.pstdev(float(d.read(T0 + i)[0][1]) for i in range(300)) for d in (calm, noisy)
    ]
    assert spread[1] > 5 * spread[0]


def test_glitches_read_the_probe_floor_occasionally() -> None:
    dev = make_device("temperature", "t1", glitch_per_day=100)
    values = [float(dev.read(T0 + 60.0 * i)[0][1]) for i in range(1440)]
    glitches = sum(v == -40.0 for v in values)
    assert 50 <= glitches <= 160


def test_ebike_charger_charges_in_the_evening_and_warms_up() -> None:
    dev = make_device("ebike_charger", "e1", activity=5)  # activity 5: charges every day
    day = T0 - 8 * 3600
    noon = dict(dev.read(day + 12 * 3600))
    assert float(noon["current"]) == 0.0
    evening = [dict(dev.read(day + 18 * 3600 + 600.0 * i)) for i in range(60)]
    charging = [r for r in evening if float(r["current"]) > 2.0]
    assert charging, "no charging session in the evening"
    assert max(float(r["temperature"]) for r in charging) > float(noon["temperature"]) + 5


def test_bad_parameters_name_the_field() -> None:
    with pytest.raises(SimulatorError, match="floors"):
        make_device("elevator", "el1", floors=1)
    with pytest.raises(SimulatorError, match="bogus"):
        make_device("elevator", "el1", bogus=3)
    with pytest.raises(SimulatorError, match="unknown device kind"):
        make_device("toaster", "x1")

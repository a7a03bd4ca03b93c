"""Scenario files: durations, validation errors that name the field, the timeline's length."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.clock import ClockMode
from simulators.errors import SimulatorError
from simulators.scenario import ClockSpec, load_scenario, parse_duration, parse_scenario

MINIMAL = {
    "name": "s1",
    "site": "site.yaml",
    "steps": [{"at": "0s", "force": {"device": "smoke-1", "metric": "smoke", "value": True}}],
    "expect": [
        {"rule": "smoke-alarm", "severity": "critical", "subject": "smoke-1", "within": "30s"}
    ],
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("24h", 86400.0),
        ("500ms", 0.5),
        ("2d", 172800.0),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10 parsecs", "s10", "-5s", -1, True, None, "10s junk"])
def test_bad_durations_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_minimal_scenario_loads_with_its_duration() -> None:
    s = parse_scenario(MINIMAL)
    assert s.steps[0].action == "force"
    assert s.expect[0].deadline == 30.0
    assert s.duration == 30.0 + s.grace


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bogus": 1}, "bogus: Extra inputs are not permitted"),
        ({"steps": [{"at": "0s"}]}, "steps.0: Value error, a step needs exactly one of"),
        (
            {
                "steps": [
                    {"at": "5s", "release": {"device": "a"}},
                    {"at": "1s", "release": {"device": "a"}},
                ]
            },
            "time order",
        ),
        (
            {"expect": [{"rule": "r", "severity": "dire", "subject": "x", "within": "1s"}]},
            "expect.0.severity",
        ),
        ({"steps": [{"at": "later", "release": {"device": "a"}}]}, "steps.0.at"),
        ({"steps": [{"at": 0, "fault": {"kind": "outage"}}]}, "needs 'gateway'"),
        ({"steps": [{"at": 0, "wire": {"gateway": "g"}}]}, "needs 'malformed'"),
        ({"clock": {"speed": 60}}, "speed and start_local need mode"),
    ],
)
def test_errors_name_the_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(SimulatorError, match=r"bad\.yaml") as err:
        parse_scenario({**MINIMAL, **change}, "bad.yaml")
    assert message in str(err.value)


def test_load_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    f = tmp_path / "sc" / "x.yaml"
    f.parent.mkdir()
    f.write_text("name: x\nsite: ../sites/demo.yaml\n")
    s = load_scenario(f)
    assert s.resolve(s.site) == tmp_path / "sites" / "demo.yaml"


def test_unreadable_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SimulatorError, match=r"missing\.yaml"):
        load_scenario(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(SimulatorError, match="a scenario is a mapping"):
        load_scenario(tmp_path / "list.yaml")


def test_start_local_is_the_next_such_local_time() -> None:
    spec = ClockSpec(mode=ClockMode.AHEAD, start_local="02:30", tz_offset_h=8)
    wall = 1_780_272_000.0  # 2026-06-01 08:00 in UTC+8
    start = spec.start_at(wall)
    assert start > wall
    assert start - wall == pytest.approx((24 - 8 + 2.5) * 3600)
    assert ClockSpec().start_at(wall) == wall
    with pytest.raises(ValueError, match="start_local need mode"):
        ClockSpec(start_local="02:30")


def test_every_starter_scenario_names_real_rules_devices_and_gateways() -> None:
    from protocols.rules import default_pack
    from simulators.scenario import library
    from simulators.site import check_references, load_site

    rules = set(default_pack().ids)
    scenarios = [load_scenario(p) for p in library()]
    assert len(scenarios) >= 11
    for sc in scenarios:
        check_references(sc, load_site(sc.resolve(sc.site)))
        assert sc.expect, sc.name
        for e in sc.expect:
            assert e.rule in rules, (sc.name, e.rule)
        for f in sc.forbid:
            assert f.rule in rules, (sc.name, f.rule)


def test_unknown_device_or_gateway_names_the_step() -> None:
    from simulators.scenario import SITES
    from simulators.site import check_references, load_site

    sc = parse_scenario(
        {
            "name": "bad-refs",
            "site": "x",
            "steps": [
                {"at": 0, "force": {"device": "nope-1", "metric": "smoke", "value": True}},
                {"at": 1, "fault": {"kind": "outage", "gateway": "gw-nope"}},
                {"at": 2, "release": {"device": "gw-b1"}},
            ],
        }
    )
    with pytest.raises(SimulatorError) as err:
        check_references(sc, load_site(SITES / "demo.yaml"))
    text = str(err.value)
    assert "steps.0.force: no device 'nope-1'" in text
    assert "steps.1.fault: no gateway 'gw-nope'" in text
    assert "steps.2.release: 'gw-b1' is a gateway's health" in text


def test_actuator_expectation_must_name_the_right_kind() -> None:
    from simulators.scenario import SITES
    from simulators.site import check_references, load_site

    sc = parse_scenario(
        {
            "name": "acts",
            "site": "x",
            "expect_actuators": [
                {"gateway": "gw-b1", "device": "smoke-b1-f1", "state": "released", "within": 5}
            ],
        }
    )
    with pytest.raises(SimulatorError, match="is a smoke, not a door_lock"):
        check_references(sc, load_site(SITES / "demo.yaml"))

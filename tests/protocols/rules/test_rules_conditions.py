"""Each condition type, driven through RuleEngine with simulated time."""

from __future__ import annotations

from protocols.kinds import DeviceKind
from protocols.messages import AccessDecision, AccessKind
from protocols.rules import (
    Action,
    ClearAlert,
    RaiseAlert,
    RuleEngine,
    default_pack,
    parse_rules,
)
from tests.protocols.rules.rules_helpers import Make

HEAT = DeviceKind.HEAT
SMOKE = DeviceKind.SMOKE


def _engine(body: str, **kw: object) -> RuleEngine:
    head = "- id: r\n  title: {zh: 测试, en: Test}\n  severity: major\n"
    return RuleEngine(parse_rules(head + body, "test.yaml"), **kw)  # type: ignore[arg-type]


def _kinds(actions: list[Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def _raised(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.rule_id, a.subject) for a in actions if isinstance(a, RaiseAlert)]


def _cleared(actions: list[Action]) -> list[tuple[str, str]]:
    return [(a.rule_id, a.subject) for a in actions if isinstance(a, ClearAlert)]


THRESHOLD = """\
  select: {kind: heat, metric: temperature}
  when: {type: threshold, op: ">=", value: 57, clear: 50}
"""


def test_threshold_with_hysteresis_raises_at_x_and_clears_only_below_y() -> None:
    mk = Make()
    engine = _engine(THRESHOLD)
    values = [40, 57, 55, 52, 50, 58, 49.9, 56, 57]
    seen = [
        _kinds(engine.observe(mk.reading(i, "h1", HEAT, "temperature", v)))
        for i, v in enumerate(values)
    ]
    assert seen == [
        [],
        ["RaiseAlert"],  # 57 >= 57
        [],
        [],
        [],  # 50 is not below 50: still raised (hysteresis)
        [],
        ["ClearAlert"],  # 49.9 < 50
        [],  # 56 < 57: no raise
        ["RaiseAlert"],
    ]


def test_threshold_without_clear_clears_when_false_and_ops_work() -> None:
    mk = Make()
    for op, raise_at, quiet in ((">", 11, 10), ("<", 9, 10), ("<=", 10, 11), ("!=", 3, 10)):
        engine = _engine(
            "  select: {kind: heat, metric: temperature}\n"
            f'  when: {{type: threshold, op: "{op}", value: 10}}\n'
        )
        assert _kinds(engine.observe(mk.reading(0, "h1", HEAT, "temperature", quiet))) == []
        assert _kinds(engine.observe(mk.reading(1, "h1", HEAT, "temperature", raise_at))) == [
            "RaiseAlert"
        ], op
        assert _kinds(engine.observe(mk.reading(2, "h1", HEAT, "temperature", quiet))) == [
            "ClearAlert"
        ], op


def test_duration_must_hold_continuously() -> None:
    mk = Make()
    engine = _engine(
        "  select: {kind: heat, metric: temperature}\n"
        '  when: {type: threshold, op: ">=", value: 57, for: 30s}\n'
    )

    def r(s: float, v: float) -> list[Action]:
        return engine.observe(mk.reading(s, "h1", HEAT, "temperature", v))

    assert r(0, 60) == []
    assert r(20, 61) == []
    assert r(25, 40) == []  # broke the streak
    assert r(26, 60) == []
    assert engine.advance(mk.at(50)) == []  # 24 s since 26 s
    acts = engine.advance(mk.at(60))  # the timer: 30 s after 26 s, no new data needed
    assert _raised(acts) == [("r", "h1")]
    raise_ = next(a for a in acts if isinstance(a, RaiseAlert))
    assert raise_.ts == mk.at(56)
    assert [o.value for o in raise_.evidence] == [60]
    assert r(70, 61) == []  # already raised: no second alert


def test_duration_also_completes_on_an_observation() -> None:
    mk = Make()
    engine = _engine(
        "  select: {kind: heat, metric: temperature}\n"
        '  when: {type: threshold, op: ">=", value: 57, for: 30s}\n'
    )
    assert engine.observe(mk.reading(0, "h1", HEAT, "temperature", 60)) == []
    assert _raised(engine.observe(mk.reading(31, "h1", HEAT, "temperature", 62))) == [("r", "h1")]
    assert engine.advance(mk.at(100)) == []


def test_rate_of_change_per_minute() -> None:
    mk = Make()
    engine = _engine(
        "  select: {kind: heat, metric: temperature}\n"
        '  when: {type: rate, op: ">=", per_minute: 8, over: 60s, clear: 1}\n'
    )
    out: list[Action] = []
    # Slow drift: 2 °C/min for two minutes, then a fast rise of 12 °C/min.
    for s in range(0, 121, 10):
        out += engine.observe(mk.reading(s, "h1", HEAT, "temperature", 20 + 2 * s / 60))
    assert out == []
    for s in range(130, 191, 10):
        out += engine.observe(mk.reading(s, "h1", HEAT, "temperature", 24 + 12 * (s - 120) / 60))
    assert _raised(out) == [("r", "h1")]
    first_raise = next(a for a in out if isinstance(a, RaiseAlert))
    assert first_raise.ts <= mk.at(160)
    # Flat again: the rate falls under the clear value once the window holds only flat samples.
    out = []
    for s in range(200, 300, 10):
        out += engine.observe(mk.reading(s, "h1", HEAT, "temperature", 38))
    assert _cleared(out) == [("r", "h1")]


def test_count_in_window_sliding() -> None:
    mk = Make()
    engine = _engine(
        "  subject: door\n  select: {access: unknown_face}\n"
        "  when: {type: count, at_least: 3, within: 10m}\n"
    )

    def a(s: float) -> list[Action]:
        return engine.observe(mk.access(s, "door1", AccessKind.UNKNOWN_FACE))

    assert a(0) == [] and a(300) == []
    assert a(700) == []  # the one at 0 s is out of the window: only 2 within 10 min
    assert _raised(a(800)) == [("r", "door1")]  # 300, 700, 800
    assert a(850) == []
    assert _cleared(engine.advance(mk.at(1299))) == []  # 700, 800, 850 still within
    assert _cleared(engine.advance(mk.at(1300))) == [("r", "door1")]
    # Another door counts on its own.
    assert engine.observe(mk.access(1301, "door2", AccessKind.UNKNOWN_FACE)) == []


def test_event_hold_and_clear_on() -> None:
    mk = Make()
    engine = _engine(
        "  subject: door\n  select: {access: held_open}\n"
        "  when: {type: event, hold: 10m, clear_on: {access: door_state}}\n"
    )
    assert _raised(engine.observe(mk.access(0, "d1", AccessKind.HELD_OPEN))) == [("r", "d1")]
    assert engine.observe(mk.access(5, "d2", AccessKind.DOOR_STATE)) == []  # another door
    acts = engine.observe(mk.access(60, "d1", AccessKind.DOOR_STATE))
    assert _cleared(acts) == [("r", "d1")]
    assert next(a for a in acts if isinstance(a, ClearAlert)).reason == "clear_on"
    assert _raised(engine.observe(mk.access(100, "d1", AccessKind.HELD_OPEN))) == [("r", "d1")]
    assert engine.advance(mk.at(699)) == []
    assert _cleared(engine.advance(mk.at(700))) == [("r", "d1")]


def test_no_data_raises_on_silence_and_clears_when_data_resumes() -> None:
    mk = Make()
    engine = _engine("  select: {kind: smoke}\n  when: {type: no_data, for: 1h}\n")
    assert engine.observe(mk.reading(0, "s1", SMOKE, "battery", 90)) == []
    assert engine.observe(mk.reading(1800, "s1", SMOKE, "smoke", False)) == []
    assert engine.advance(mk.at(3600 + 1799)) == []  # data at 1800 moved the deadline
    acts = engine.advance(mk.at(3600 + 1800))
    assert _raised(acts) == [("r", "s1")]
    raise_ = next(a for a in acts if isinstance(a, RaiseAlert))
    assert (raise_.device, raise_.zone, raise_.evidence) == ("s1", "z1", ())  # silence: no cause
    assert raise_.ts == mk.at(5400)
    assert engine.advance(mk.at(20000)) == []  # raised once, not again
    acts = engine.observe(mk.reading(20001, "s1", SMOKE, "battery", 89))
    assert _cleared(acts) == [("r", "s1")]
    assert next(a for a in acts if isinstance(a, ClearAlert)).reason == "no_data_resumed"


def test_no_data_with_a_value_filter_counts_only_activity() -> None:
    mk = Make()
    pack = default_pack().for_cloud()
    engine = RuleEngine(pack)
    lone = frozenset({"living_alone"})
    pir = DeviceKind.PIR
    assert engine.observe(mk.reading(0, "p1", pir, "motion", True, tags=lone)) == []
    assert engine.observe(mk.reading(0, "p2", pir, "motion", True)) == []  # not living alone
    for h in range(1, 30):  # "no motion" reports do not count as activity
        engine.observe(mk.reading(h * 3600, "p1", pir, "motion", False, tags=lone))
    acts = engine.advance(mk.at(24 * 3600))
    assert [k for k in _raised(acts) if k[0] == "living-alone-no-activity"] == [
        ("living-alone-no-activity", "p1")
    ]


SCHEDULE = """\
  select: {kind: door_contact, metric: open}
  when: {type: threshold, op: "==", value: true}
  schedule:
    windows:
      - {days: [mon, tue, wed, thu, fri], from: "22:00", to: "06:00"}
"""


def test_schedule_uses_each_sites_time_zone() -> None:
    # T0 is Monday 12:00 UTC = 20:00 in Shanghai, 13:00 in Berlin; 15:00 UTC = 23:00 Shanghai.
    zones = {"cn": "Asia/Shanghai", "de": "Europe/Berlin"}
    engine = _engine(SCHEDULE, timezones=zones)
    dc = DeviceKind.DOOR_CONTACT
    cn, de = Make(site="cn"), Make(site="de")
    assert engine.observe(cn.reading(0, "d1", dc, "open", True)) == []  # 20:00 in Shanghai
    assert _raised(engine.observe(cn.reading(3 * 3600, "d1", dc, "open", True))) == [("r", "d1")]
    assert engine.observe(de.reading(3 * 3600, "d1", dc, "open", True)) == []  # 16:00 Berlin
    # 21:30 UTC = 22:30 Berlin (winter time, UTC+1)
    assert _raised(engine.observe(de.reading(9.5 * 3600, "d1", dc, "open", True))) == [("r", "d1")]


def test_schedule_window_past_midnight_belongs_to_the_day_it_starts() -> None:
    engine = _engine(SCHEDULE, default_timezone="Asia/Shanghai")
    dc = DeviceKind.DOOR_CONTACT
    mk = Make()
    # Saturday 01:00 Shanghai = Friday 17:00 UTC (T0 + 4 days + 5 h): Friday's window runs on.
    assert _raised(engine.observe(mk.reading(4 * 86400 + 5 * 3600, "d1", dc, "open", True)))
    engine = _engine(SCHEDULE, default_timezone="Asia/Shanghai")
    # Sunday 01:00 Shanghai: Saturday has no window.
    assert engine.observe(mk.reading(5 * 86400 + 5 * 3600, "d1", dc, "open", True)) == []
    # Monday 01:00 Shanghai: Sunday has no window either; Monday's starts at 22:00.
    assert engine.observe(mk.reading(6 * 86400 + 5 * 3600, "d1", dc, "open", True)) == []


def test_schedule_time_zone_on_the_rule_wins() -> None:
    body = SCHEDULE.replace("  schedule:\n", "  schedule:\n    timezone: America/New_York\n")
    engine = _engine(body, default_timezone="Asia/Shanghai")
    # T0 + 3 h = 15:00 UTC = 10:00 New York (23:00 Shanghai): outside.
    assert (
        engine.observe(Make().reading(3 * 3600, "d1", DeviceKind.DOOR_CONTACT, "open", True)) == []
    )


CORRELATION = """\
  subject: zone
  when:
    type: correlation
    within: 120s
    all_of:
      - select: {kind: smoke, metric: smoke}
        op: "=="
        value: true
      - select: {kind: heat, metric: temperature}
        op: ">="
        per_minute: 6
        over: 60s
  then:
    - command: siren.on
      target: {kind: siren}
"""


def test_correlation_smoke_and_heat_rise_in_one_zone_within_window() -> None:
    mk = Make()
    engine = _engine(CORRELATION)
    out: list[Action] = []
    out += engine.observe(mk.reading(0, "sm1", SMOKE, "smoke", True))
    # Heat rise in ANOTHER zone does not count.
    for s in range(0, 70, 10):
        out += engine.observe(mk.reading(s, "h9", HEAT, "temperature", 20 + s / 5, zone="z2"))
    assert out == []
    # Heat rises 12 °C/min in z1 from 10 s on; the rate is known once 30 s of samples exist.
    for s in range(10, 80, 10):
        out += engine.observe(mk.reading(s, "h1", HEAT, "temperature", 20 + s / 5))
    assert _raised(out) == [("r", "z1")]
    raise_ = next(a for a in out if isinstance(a, RaiseAlert))
    assert {o.device for o in raise_.evidence} == {"sm1", "h1"}
    assert raise_.zone == "z1"


def test_correlation_outside_the_window_does_not_fire() -> None:
    mk = Make()
    engine = _engine(CORRELATION.replace("per_minute: 6\n        over: 60s", "value: 57"))
    assert engine.observe(mk.reading(0, "sm1", SMOKE, "smoke", True)) == []
    assert engine.observe(mk.reading(121, "h1", HEAT, "temperature", 60)) == []  # 121 s later
    assert _raised(engine.observe(mk.reading(130, "sm1", SMOKE, "smoke", True))) == [("r", "z1")]


def test_correlation_needs_distinct_devices() -> None:
    mk = Make()
    engine = _engine(
        CORRELATION.replace(
            "kind: heat, metric: temperature", "kind: smoke, metric: smoke"
        ).replace(
            'op: ">="\n        per_minute: 6\n        over: 60s', 'op: "=="\n        value: true'
        )
    )
    assert engine.observe(mk.reading(0, "sm1", SMOKE, "smoke", True)) == []
    assert engine.observe(mk.reading(5, "sm1", SMOKE, "smoke", True)) == []  # same detector
    assert _raised(engine.observe(mk.reading(6, "sm2", SMOKE, "smoke", True))) == [("r", "z1")]


def test_correlation_clears_when_a_member_lets_go_or_the_window_passes() -> None:
    mk = Make()
    engine = _engine(CORRELATION.replace("per_minute: 6\n        over: 60s", "value: 57"))
    engine.observe(mk.reading(0, "sm1", SMOKE, "smoke", True))
    assert _raised(engine.observe(mk.reading(1, "h1", HEAT, "temperature", 60)))
    assert _cleared(engine.observe(mk.reading(2, "sm1", SMOKE, "smoke", False))) == [("r", "z1")]
    engine.observe(mk.reading(3, "sm1", SMOKE, "smoke", True))  # raise suppressed? no interval
    assert engine.active() == [("r", "site1", "z1")]
    assert engine.advance(mk.at(100)) == []
    assert _cleared(engine.advance(mk.at(121))) == [("r", "z1")]  # h1's hit at 1 s expired


def test_access_patterns_from_the_default_pack() -> None:
    mk = Make()
    engine = RuleEngine(default_pack().for_cloud())
    acts = engine.observe(mk.access(0, "door1", AccessKind.FORCED_OPEN))
    assert ("door-forced", "door1") in _raised(acts)
    acts = engine.observe(mk.access(1, "door1", AccessKind.TAILGATING))
    assert _raised(acts) == [("tailgating", "door1")]
    acts = engine.observe(
        mk.access(2, "door2", AccessKind.DECISION, decision=AccessDecision.DENIED, reason="unknown")
    )
    assert acts == []
    acts = engine.observe(
        mk.access(
            3,
            "door2",
            AccessKind.DECISION,
            decision=AccessDecision.ALARM,
            reason="block_list",
            person="p42",
        )
    )
    assert _raised(acts) == [("block-listed-person", "door2")]
    raised: list[tuple[str, str]] = []
    for i in range(3):
        raised += _raised(engine.observe(mk.access(10 + 60 * i, "door3", AccessKind.UNKNOWN_FACE)))
    assert raised == [("unknown-face-repeated", "door3")]


def test_zone_subject_stays_raised_while_any_device_holds() -> None:
    mk = Make()
    engine = _engine(THRESHOLD.replace("  select:", "  subject: zone\n  select:"))
    assert _raised(engine.observe(mk.reading(0, "h1", HEAT, "temperature", 60))) == [("r", "z1")]
    assert engine.observe(mk.reading(1, "h2", HEAT, "temperature", 60)) == []  # same zone
    assert engine.observe(mk.reading(2, "h1", HEAT, "temperature", 20)) == []  # h2 still hot
    assert _cleared(engine.observe(mk.reading(3, "h2", HEAT, "temperature", 20))) == [("r", "z1")]


def test_selector_filters_sites_zones_devices_and_tags() -> None:
    mk = Make()
    engine = _engine(
        "  select: {kind: heat, metric: temperature, sites: [site1], zones: [z1, z2],"
        " devices: [h1, h2], tags: [boiler]}\n"
        '  when: {type: threshold, op: ">", value: 50}\n'
    )
    boiler = frozenset({"boiler", "basement"})
    assert engine.observe(mk.reading(0, "h1", HEAT, "temperature", 60)) == []  # no tag
    assert engine.observe(mk.reading(0, "h3", HEAT, "temperature", 60, tags=boiler)) == []
    assert (
        engine.observe(mk.reading(0, "h1", HEAT, "temperature", 60, tags=boiler, zone="z3")) == []
    )
    assert (
        engine.observe(mk.reading(0, "h1", HEAT, "temperature", 60, tags=boiler, site="s2")) == []
    )
    assert (
        engine.observe(mk.reading(0, "h1", DeviceKind.TEMPERATURE, "temperature", 60, tags=boiler))
        == []
    )
    assert _raised(engine.observe(mk.reading(0, "h1", HEAT, "temperature", 60, tags=boiler)))


def test_unrelated_observations_do_nothing() -> None:
    engine = RuleEngine(default_pack())
    mk = Make()
    assert engine.observe(mk.reading(0, "h1", HEAT, "battery", 3)) == []
    assert engine.observe(mk.event(0, "x", None, "button.pressed")) == []


def test_no_data_ignores_data_older_than_what_was_seen() -> None:
    mk = Make()
    engine = _engine("  select: {kind: smoke}\n  when: {type: no_data, for: 1h}\n")
    engine.observe(mk.reading(7200, "s1", SMOKE, "battery", 90))
    assert _raised(engine.advance(mk.at(7200 + 3600))) == [("r", "s1")]
    # A late copy of older data is no sign of life now: the alert stays, no flapping.
    assert engine.observe(mk.reading(100, "s1", SMOKE, "battery", 90, historical=True)) == []
    assert engine.advance(mk.at(20_000)) == []
    assert engine.active() == [("r", "site1", "s1")]


def test_a_quiet_zone_forgets_its_correlation_hits() -> None:
    mk = Make()
    engine = _engine(CORRELATION.replace("per_minute: 6\n        over: 60s", "value: 57"))
    engine.observe(mk.reading(0, "sm1", SMOKE, "smoke", True))
    assert engine.snapshot()["rules"]["r"]["state"]["zones"]  # one zone with a smoke hit
    engine.advance(mk.at(121))
    assert engine.snapshot()["rules"]["r"]["state"]["zones"] == {}
    # Heat alone 121 s after the smoke no longer confirms anything.
    assert engine.observe(mk.reading(122, "h1", HEAT, "temperature", 60)) == []

"""Loading rule packs: errors name the file, the rule and the field; nothing but RuleError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols.messages import GatewayConfig
from protocols.rules import (
    Correlation,
    RuleError,
    RuleSet,
    Threshold,
    default_pack,
    load_rules,
    parse_rules,
)
from protocols.rules.durations import format_duration, parse_duration

GOOD = """
- id: heat-high
  title: {zh: 温度过高, en: High temperature}
  severity: major
  select: {kind: heat, metric: temperature}
  when: {type: threshold, op: ">=", value: 57, clear: 50, for: 30s}
"""


def _rule(**over: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "r1",
        "title": {"zh": "测试", "en": "Test"},
        "severity": "minor",
        "select": {"kind": "heat", "metric": "temperature"},
        "when": {"type": "threshold", "op": ">", "value": 1},
    }
    rule.update(over)
    return rule


def _error(items: list[Any]) -> RuleError:
    with pytest.raises(RuleError) as info:
        RuleSet.from_config(items, "rules/test.yaml")
    return info.value


def test_good_pack_parses_with_durations_in_seconds() -> None:
    rs = parse_rules(GOOD, "rules/heat.yaml")
    (rule,) = rs.rules
    assert isinstance(rule.when, Threshold)
    assert rule.when.for_ == 30.0
    assert rule.when.clear == 50


def test_bad_duration_names_file_rule_and_field() -> None:
    err = _error(
        [
            _rule(
                id="confirmed-fire",
                subject="zone",
                select=None,
                when={
                    "type": "correlation",
                    "within": "0s",
                    "all_of": [
                        {"select": {"metric": "smoke"}, "op": "==", "value": True},
                        {"select": {"metric": "temperature"}, "op": ">=", "value": 50},
                    ],
                },
            )
        ]
    )
    assert str(err) == "rules/test.yaml: rule 'confirmed-fire': when.within: must be > 0"
    assert (err.source, err.file, err.rule, err.field) == (
        "rules/test.yaml",
        "rules/test.yaml",
        "confirmed-fire",
        "when.within",
    )


@pytest.mark.parametrize("bad", ["30 seconds", "5x", "-5s", "", "1h-3m"])
def test_unparseable_durations_are_refused(bad: str) -> None:
    err = _error([_rule(when={"type": "threshold", "op": ">", "value": 1, "for": bad})])
    assert err.field == "when.for"
    assert err.rule == "r1"


def test_unknown_key_is_named() -> None:
    err = _error([_rule(severty="major")])
    assert err.field == "severty"
    assert "unknown key" in str(err)
    misspelt = _rule(severty="major")
    del misspelt["severity"]
    err = _error([misspelt])  # the typo, not the "missing" field it causes, comes first
    assert (err.field, err.detail) == ("severty", "unknown key (+1 more)")
    err = _error([_rule(when={"type": "threshold", "op": ">", "value": 1, "hysteresis": 3})])
    assert err.field == "when.hysteresis"


def test_bad_field_values_are_named() -> None:
    assert _error([_rule(severity="urgent")]).field == "severity"
    assert _error([_rule(select={"kind": "toaster", "metric": "t"})]).field == "select.kind[0]"
    assert _error([_rule(when={"type": "threshold", "op": "=>", "value": 1})]).field == "when.op"
    err = _error([_rule(when={"type": "sometimes"})])
    assert err.field == "when"
    assert "threshold" in err.detail


def test_hysteresis_on_the_wrong_side_is_refused() -> None:
    err = _error([_rule(when={"type": "threshold", "op": ">=", "value": 57, "clear": 60})])
    assert err.field == "when.clear"
    assert err.detail.startswith("must be <= 57")


def test_cross_field_rules_name_the_field() -> None:
    err = _error([_rule(select={"kind": "heat"})])
    assert err.field == "select.metric"
    err = _error([_rule(then=[{"command": "door.open"}])])
    assert err.field == "then[0].target"


def test_duplicate_ids_in_one_file() -> None:
    err = _error([_rule(), _rule()])
    assert (err.rule, err.field) == ("r1", "id")
    assert "duplicate" in err.detail


def test_duplicate_ids_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path)
    assert info.value.rule == "heat-high"
    assert str(tmp_path / "a.yaml") in str(info.value)
    assert info.value.source == str(tmp_path / "b.yaml")


def test_load_several_files_and_directories(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(GOOD, encoding="utf-8")
    other = tmp_path / "more"
    other.mkdir()
    (other / "b.yml").write_text(GOOD.replace("heat-high", "heat-high-2"), encoding="utf-8")
    rs = load_rules([tmp_path / "a.yaml", other])
    assert rs.ids == ("heat-high", "heat-high-2")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("- id: x\n  title: [unclosed\n", encoding="utf-8")
    with pytest.raises(RuleError) as info:
        load_rules(path)
    assert info.value.source == str(path)
    assert "line" in info.value.detail


def test_missing_file_is_a_rule_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path / "nope.yaml")
    assert "cannot read" in str(info.value)


def test_a_pack_is_a_list() -> None:
    with pytest.raises(RuleError) as info:
        parse_rules("id: x\n", "x.yaml")
    assert str(info.value) == "x.yaml: a rule pack is a list of rules"
    with pytest.raises(RuleError) as info:
        parse_rules("- 3\n", "x.yaml")
    assert info.value.rule == "#1"


def test_unknown_time_zone_is_refused() -> None:
    sched = {"timezone": "Mars/Olympus", "windows": [{"from": "22:00", "to": "06:00"}]}
    err = _error([_rule(schedule=sched)])
    assert err.field == "schedule.timezone"
    assert "Mars/Olympus" in err.detail


def test_unquoted_yaml_times_are_read_as_hours_and_minutes() -> None:
    text = GOOD + "  schedule:\n    windows:\n      - {from: 22:30, to: '06:00'}\n"
    (rule,) = parse_rules(text, "x.yaml").rules
    assert rule.schedule is not None
    window = rule.schedule.windows[0]
    assert (window.from_, window.to) == (22 * 60 + 30, 6 * 60)


def test_correlation_must_be_about_a_zone() -> None:
    err = _error(
        [
            _rule(
                select=None,
                when={
                    "type": "correlation",
                    "within": "2m",
                    "all_of": [
                        {"select": {"metric": "smoke"}, "op": "==", "value": True},
                        {"select": {"metric": "temperature"}, "op": ">=", "value": 50},
                    ],
                },
            )
        ]
    )
    assert err.field == "subject"


def test_config_round_trip_through_gateway_config() -> None:
    pack = default_pack()
    config = GatewayConfig(version=1, issued_at="2026-01-01T00:00:00Z", rules=pack.to_config())
    wire = GatewayConfig.model_validate_json(config.model_dump_json())
    again = RuleSet.from_config(wire.rules)
    assert again == pack
    corr = again.get("confirmed-fire")
    assert corr is not None and isinstance(corr.when, Correlation)


def test_from_config_errors_name_config() -> None:
    with pytest.raises(RuleError) as info:
        RuleSet.from_config([{"id": "x"}])
    assert info.value.source == "config"
    assert info.value.rule == "x"


def test_durations_parse_and_format() -> None:
    assert parse_duration("1h30m") == 5400
    assert parse_duration("500ms") == 0.5
    assert parse_duration(45) == 45
    assert format_duration(5400) == "1h30m"
    assert format_duration(0.5) == "500ms"
    assert parse_duration(format_duration(86400 + 61)) == 86400 + 61
    for bad in (True, None, "1y", 0, -1, float("inf"), "400d"):
        with pytest.raises(ValueError):
            parse_duration(bad)


_keys = st.sampled_from(
    [
        "id",
        "title",
        "severity",
        "select",
        "when",
        "type",
        "op",
        "value",
        "clear",
        "for",
        "within",
        "all_of",
        "kind",
        "metric",
        "then",
        "command",
        "target",
        "notify",
        "schedule",
        "windows",
        "from",
        "to",
        "timezone",
        "zh",
        "en",
        "subject",
        "at_least",
        "hold",
        "min_interval",
    ]
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(
        [
            "threshold",
            "correlation",
            "count",
            "no_data",
            "rate",
            "event",
            ">=",
            "==",
            "30s",
            "smoke",
            "heat",
            "critical",
            "zone",
            "22:00",
            "Asia/Shanghai",
            "door.open",
        ]
    ),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(_keys | st.text(max_size=5), inner, max_size=6)
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.dictionaries(_keys, _values, max_size=8), max_size=3))
def test_random_rule_dicts_only_ever_raise_rule_error(items: list[dict[str, Any]]) -> None:
    try:
        rs = RuleSet.from_config(items, "fuzz")
    except RuleError as err:
        assert str(err).startswith("fuzz")
        return
    # Whatever loads must survive the config round trip unchanged.
    assert RuleSet.from_config(rs.to_config()) == rs


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_random_text_only_ever_raises_rule_error(text: str) -> None:
    try:
        parse_rules(text, "fuzz.yaml")
    except RuleError as err:
        assert err.source == "fuzz.yaml"


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {k: (_replace(v, rest, new) if k == head else v) for k, v in value.items()}
    return [(_replace(v, rest, new) if i == head else v) for i, v in enumerate(value)]


_PACK = [dict(r) for r in default_pack().to_config()]


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_default_pack_only_ever_raises_rule_error(data: st.DataObject) -> None:
    """One value anywhere in a valid pack replaced by junk: a RuleError naming it, or valid."""
    index = data.draw(st.integers(0, len(_PACK) - 1))
    rule = _PACK[index]
    path = data.draw(st.sampled_from(_paths(rule)))
    mutated = _replace(rule, path, data.draw(_values))
    items = [*_PACK[:index], mutated, *_PACK[index + 1 :]]
    try:
        RuleSet.from_config(items, "fuzz")
    except RuleError as err:
        assert err.source == "fuzz"
        assert err.rule is not None

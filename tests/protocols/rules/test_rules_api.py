"""The public API other packages code against, and the shipped default pack."""

from __future__ import annotations

import protocols.rules as rules
from protocols.kinds import DeviceKind
from protocols.rules import (
    ClearAlert,
    RaiseAlert,
    RuleEngine,
    SendCommand,
    default_pack,
    edge_pack,
)
from tests.protocols.rules.rules_helpers import Make


def test_public_names_exist() -> None:
    for name in (
        "RuleSet",
        "Rule",
        "Observation",
        "RaiseAlert",
        "ClearAlert",
        "SendCommand",
        "Notify",
        "load_rules",
        "parse_rules",
        "default_pack",
        "edge_pack",
        "RuleEngine",
        "observations_from",
        "RuleError",
    ):
        assert hasattr(rules, name), name
    for method in ("observe", "advance", "snapshot", "restore"):
        assert callable(getattr(RuleEngine, method)), method


def test_default_pack_smoke_raises_and_clears() -> None:
    mk = Make()
    engine = RuleEngine(default_pack().for_cloud())
    acts = engine.observe(mk.reading(0, "sm1", DeviceKind.SMOKE, "smoke", True))
    raised = [a for a in acts if isinstance(a, RaiseAlert)]
    assert [(a.rule_id, a.subject) for a in raised] == [("smoke-alarm", "sm1")]
    acts = engine.observe(mk.reading(10, "sm1", DeviceKind.SMOKE, "smoke", False))
    assert [(a.rule_id, a.subject) for a in acts if isinstance(a, ClearAlert)] == [
        ("smoke-alarm", "sm1")
    ]


def test_edge_pack_releases_doors_and_sounds_sirens() -> None:
    mk = Make()
    engine = RuleEngine(edge_pack())
    acts = engine.observe(mk.reading(0, "sm1", DeviceKind.SMOKE, "smoke", True))
    cmds = sorted(
        (a.name, a.target.kind, a.target.zone) for a in acts if isinstance(a, SendCommand)
    )
    assert cmds == [
        ("door.open", DeviceKind.DOOR_LOCK, "z1"),
        ("siren.on", DeviceKind.SIREN, "z1"),
    ]
    assert not any(isinstance(a, RaiseAlert) for a in acts)  # edge rule is actions only


def test_docs_table_lists_every_default_rule() -> None:
    import re
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[3] / "docs" / "rules.md").read_text(encoding="utf-8")
    table = docs[docs.index("## The default residential pack") : docs.index("## Module map")]
    listed = re.findall(r"^\| `([a-z0-9.\-_]+)` \|", table, flags=re.MULTILINE)
    assert listed == list(default_pack().ids)


def test_every_yaml_example_in_the_docs_loads() -> None:
    import re
    from pathlib import Path

    from protocols.rules import parse_rules

    docs = (Path(__file__).resolve().parents[3] / "docs" / "rules.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", docs, flags=re.DOTALL)
    rules = [b for b in blocks if b.startswith("- id:")]
    assert len(rules) >= 6
    for block in rules:
        assert len(parse_rules(block, "docs/rules.md")) >= 1

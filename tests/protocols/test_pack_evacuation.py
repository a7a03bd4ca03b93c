"""Evacuation doors released by the shipped rules must stay released until someone locks them:
a door that relocks after a few seconds would trap people behind it in a fire."""

from __future__ import annotations

from typing import Any

from protocols.rules import default_pack, edge_pack


def test_every_door_release_in_the_shipped_packs_holds_the_door_open() -> None:
    releases: list[tuple[str, dict[str, Any]]] = [
        (str(rule["id"]), step)
        for pack in (default_pack(), edge_pack())
        for rule in pack.to_config()
        for step in rule.get("then", [])  # type: ignore[attr-defined]
        if isinstance(step, dict) and step.get("command") == "door.open"
    ]
    assert {r for r, _ in releases} >= {"confirmed-fire", "edge-smoke-local"}
    for rule_id, step in releases:
        assert step.get("params", {}).get("hold") is True, rule_id

"""Which rules this cloud runs: the shipped default pack plus rule files from settings."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from protocols.rules.language import RuleSet
from protocols.rules.loader import combine, default_pack, load_rules


def load_packs(files: Sequence[Path], *, include_default: bool = True) -> RuleSet:
    """Validate every file (a bad one raises RuleError naming file, rule and field)."""
    sets: list[RuleSet] = []
    names: list[str] = []
    if include_default:
        sets.append(default_pack())
        names.append("default pack")
    for path in files:
        sets.append(load_rules(path))
        names.append(str(path))
    return combine(sets, names) if sets else RuleSet()

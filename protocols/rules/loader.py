"""Load rule packs from YAML files, text or pushed config, with errors that name the field."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from protocols.rules.errors import RuleError
from protocols.rules.language import CONDITION_TYPES, Rule, RuleSet

MAX_RULES = 2000
_TAGS = frozenset(CONDITION_TYPES) | {"command", "notify"}
_TAGGED_PARENTS = frozenset({"when", "then", "on_clear"})

PathLike = str | os.PathLike[str]


def _field(loc: Sequence[int | str]) -> str:
    """``('when', 'correlation', 'within')`` → ``when.within``: drop the union tags."""
    out: list[str] = []
    prev: int | str | None = None
    for i, part in enumerate(loc):
        # Discriminated unions add the tag to the location: drop it, the user never wrote it.
        is_tag = isinstance(part, str) and part in _TAGS
        if is_tag and (prev in _TAGGED_PARENTS or (isinstance(prev, int) and i >= 2)):
            prev = part
            continue
        if isinstance(part, int):
            out.append(f"[{part}]")
        else:
            out.append(("." if out else "") + part)
        prev = part
    return "".join(out)


def _message(error: dict[str, object]) -> str:
    msg = str(error.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if error.get("type") == "extra_forbidden":
        msg = "unknown key"
    return msg


_FIELD_PREFIX = re.compile(r"([a-z_][a-z0-9_]*(?:\.[a-z_][a-z0-9_]*)*): (.+)", re.DOTALL)


def _rule_error(exc: ValidationError, source: str, rule: str) -> RuleError:
    errors = exc.errors(include_url=False, include_input=False)
    # A misspelt key also makes the real one "missing": report the unknown key first.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    field = _field(first["loc"])
    detail = _message(dict(first))
    # Cross-field validators say which field they mean: "clear: must be <= 57 ...".
    prefixed = _FIELD_PREFIX.fullmatch(detail)
    if prefixed is not None and first["type"] == "value_error":
        field = f"{field}.{prefixed.group(1)}" if field else prefixed.group(1)
        detail = prefixed.group(2)
    if len(errors) > 1:
        detail += f" (+{len(errors) - 1} more)"
    return RuleError(detail, source=source, rule=rule, field=field)


def _rule_name(item: object, index: int) -> str:
    if isinstance(item, dict):
        rule_id = item.get("id")
        if isinstance(rule_id, str) and rule_id:
            return rule_id[:64]
    return f"#{index + 1}"


def validate_items(items: object, source_name: str) -> RuleSet:
    """Validate a list of rule mappings (parsed YAML or ``GatewayConfig.rules``)."""
    if items is None:
        return RuleSet()
    if isinstance(items, dict) and set(items) == {"rules"}:
        items = items["rules"]
    if not isinstance(items, list | tuple):
        raise RuleError("a rule pack is a list of rules", source=source_name)
    if len(items) > MAX_RULES:
        raise RuleError(f"at most {MAX_RULES} rules per pack", source=source_name)
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        name = _rule_name(item, index)
        if not isinstance(item, dict):
            raise RuleError("a rule is a mapping of keys", source=source_name, rule=name)
        try:
            rule = Rule.model_validate(item)
        except ValidationError as exc:
            raise _rule_error(exc, source_name, name) from exc
        if rule.id in seen:
            raise RuleError(
                f"duplicate rule id (first defined as rule #{seen[rule.id] + 1})",
                source=source_name,
                rule=rule.id,
                field="id",
            )
        seen[rule.id] = index
        rules.append(rule)
    return RuleSet(rules=tuple(rules))


def parse_rules(text: str, source_name: str = "<text>") -> RuleSet:
    """Parse a YAML rule pack (a list of rules). Raises :class:`RuleError`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise RuleError(f"{where}not valid YAML: {problem}", source=source_name) from exc
    except (ValueError, TypeError, RecursionError) as exc:  # e.g. absurd numbers, deep nesting
        raise RuleError(f"not valid YAML: {exc}", source=source_name) from exc
    return validate_items(data, source_name)


def combine(sets: Iterable[RuleSet], names: Sequence[str] | None = None) -> RuleSet:
    """Several packs as one; a rule id defined twice is an error naming both sources."""
    rules = []
    where: dict[str, str] = {}
    for i, rs in enumerate(sets):
        source = names[i] if names is not None else f"pack #{i + 1}"
        for rule in rs.rules:
            if rule.id in where:
                raise RuleError(
                    f"duplicate rule id (also in {where[rule.id]})",
                    source=source,
                    rule=rule.id,
                    field="id",
                )
            where[rule.id] = source
            rules.append(rule)
    return RuleSet(rules=tuple(rules))


def load_rules(paths: PathLike | Iterable[PathLike]) -> RuleSet:
    """Load one YAML file, a directory of ``*.yaml``/``*.yml`` files, or several paths."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    sets = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RuleError(f"cannot read: {exc}", source=str(path)) from exc
        sets.append(parse_rules(text, str(path)))
    return combine(sets, [str(f) for f in files])


def _packaged(name: str) -> RuleSet:
    resource = resources.files("protocols.rules").joinpath("packs", name)
    return parse_rules(resource.read_text(encoding="utf-8"), f"protocols/rules/packs/{name}")


def default_pack() -> RuleSet:
    """The residential community pack that ships with Linli (cloud and edge rules)."""
    return _packaged("residential.yaml")


def edge_pack() -> RuleSet:
    """What a gateway runs by itself, offline included: the default pack's edge rules."""
    return default_pack().for_edge()

"""Check rule files and show the default pack.

python -m protocols.rules check rules/*.yaml     # validate; exit 1 with the first error
python -m protocols.rules default                # print the shipped residential pack
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib import resources

from pydantic import TypeAdapter

from protocols.rules.errors import RuleError
from protocols.rules.language import Rule
from protocols.rules.loader import load_rules


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m protocols.rules", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate rule files or directories")
    check.add_argument("paths", nargs="+")
    sub.add_parser("default", help="print the default residential pack (YAML)")
    sub.add_parser("schema", help="print the JSON Schema of a rule pack (a list of rules)")
    args = parser.parse_args(argv)

    if args.command == "schema":
        schema = TypeAdapter(list[Rule]).json_schema(by_alias=True)
        schema["title"] = "Linli rule pack"
        print(json.dumps(schema, indent=2, ensure_ascii=False))
        return 0
    if args.command == "default":
        pack = resources.files("protocols.rules").joinpath("packs", "residential.yaml")
        sys.stdout.write(pack.read_text(encoding="utf-8"))
        return 0
    try:
        rules = load_rules(args.paths)
    except RuleError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for rule in rules:
        where = rule.runs_on.value
        print(f"ok  {rule.id:<28} {rule.severity.value:<8} {rule.when.type:<12} {where}")
    print(f"{len(rules)} rule(s) valid")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ``linli`` command: one entry point that hands each subcommand to its package.

Each package keeps its own ``main(argv) -> int`` (also reachable as ``python -m PACKAGE``), and
is imported only when its subcommand runs, so ``linli edge`` on a Raspberry Pi never imports the
cloud's dependencies.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "cloud": (
        "cloud.__main__",
        "run the cloud: ingest, rules, alerts, API (create-admin, migrate…)",
    ),
    "edge": ("edge.__main__", "run the edge agent on a gateway"),
    "sim": ("simulators.__main__", "run a simulated site or a scenario (--check)"),
    "demo": ("linli.demo", "broker + cloud + simulated site on this machine, for a first look"),
    "protocol": ("protocols.__main__", "the wire contract: JSON Schemas, topic grammar, checks"),
    "faces": ("edge.gate.cli", "enrol and verify faces for the gate"),
    "deploy": ("deploy.cli", "generate locked-down deployment files (broker ACL, TLS)"),
}


def _usage() -> str:
    lines = ["usage: linli COMMAND [ARGS…]", "", "commands:"]
    lines += [f"  {name:<9} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "Run 'linli COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from importlib.metadata import version

        print(f"linli {version('linli')}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"linli: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name = COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        print(
            f"linli {name}: cannot import {exc.name!r}. Install the extra that provides it, "
            f"e.g. pip install 'linli[{'edge' if name in ('edge', 'faces') else 'all'}]'",
            file=sys.stderr,
        )
        return 2
    entry: Callable[[list[str]], int] = module.main
    return int(entry(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())

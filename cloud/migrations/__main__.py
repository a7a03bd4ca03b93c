"""``python -m cloud.migrations [--db URL] ALEMBIC-ARGS…`` — Alembic's CLI on Linli's config."""

from __future__ import annotations

import os
import sys

from alembic.config import CommandLine

from cloud.migrations import alembic_config


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    url = os.environ.get("LINLI_DB_URL")
    if "--db" in args:
        i = args.index("--db")
        url = args[i + 1]
        del args[i : i + 2]
    cli = CommandLine(prog="python -m cloud.migrations")
    options = cli.parser.parse_args(args)
    if not hasattr(options, "cmd"):
        cli.parser.error("too few arguments")
    cli.run_cmd(alembic_config(url), options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

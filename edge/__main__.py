"""``linli edge --config FILE`` (also ``python -m edge``): run the edge agent."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sqlite3
import sys
from collections.abc import Sequence

from edge.config import EdgeConfig, load_config
from edge.errors import ConfigError, EdgeError
from edge.gate.errors import GateError

log = logging.getLogger("edge")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="linli edge", description="Run the Linli edge agent on a gateway."
    )
    parser.add_argument("--config", "-c", required=True, help="YAML or TOML config file")
    parser.add_argument(
        "--check", action="store_true", help="validate the config and exit (0 = valid)"
    )
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


async def _run(config: EdgeConfig) -> None:
    from edge.agent import EdgeAgent

    agent = EdgeAgent(config)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, agent.stop)
    async with agent:
        await agent.run()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"linli edge: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(
            f"{args.config}: valid ({len(config.drivers)} driver(s), {len(config.gates)} gate(s))"
        )
        return 0
    logging.basicConfig(
        level=args.log_level or config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(_run(config))
    except ConfigError as exc:  # found while building drivers (e.g. a bad device model)
        print(f"linli edge: {exc}", file=sys.stderr)
        return 2
    except (EdgeError, GateError, sqlite3.Error, OSError) as exc:  # e.g. an unwritable state_dir
        print(f"linli edge: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

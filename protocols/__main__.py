"""``linli protocol``: inspect and export the wire contract."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from protocols.codec import decode
from protocols.errors import ProtocolError
from protocols.schema import write_schemas
from protocols.topics import PREFIX, Channel


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linli protocol", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    schema = sub.add_parser("schema", help="write one JSON Schema file per message type")
    schema.add_argument("--out", type=Path, required=True, help="directory to write into")
    check = sub.add_parser("check", help="validate a payload file against a topic")
    check.add_argument("topic")
    check.add_argument("payload", type=Path, help="payload file, or - for standard input")
    sub.add_parser("topics", help="print the topic grammar")
    args = parser.parse_args(argv)

    if args.command == "schema":
        for path in write_schemas(args.out):
            print(path)
        return 0
    if args.command == "topics":
        for channel in Channel:
            direction = "uplink" if channel.uplink else "downlink"
            retained = ", retained" if channel.retained else ""
            print(f"{PREFIX}/{{site}}/{{gateway}}/{channel.value}\t{direction}{retained}")
        return 0
    data = sys.stdin.buffer.read() if str(args.payload) == "-" else args.payload.read_bytes()
    try:
        decoded = decode(args.topic, data)
    except ProtocolError as exc:
        print(f"rejected: {exc}", file=sys.stderr)
        return 1
    print(f"ok: {type(decoded.message).__name__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Run one ingest process on its own: ``python -m cloud.ingest --db URL --port 1883 …``.

For scale-out (several processes in one MQTT 5 shared-subscription group) and for tests that
kill ingest mid-stream. The API process normally runs :class:`cloud.ingest.Ingest` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from pydantic import ValidationError

from cloud.db import create_schema, make_engine
from cloud.ingest.config import IngestConfig, default_rawlog
from cloud.ingest.service import Ingest
from cloud.registry.service import Registry
from cloud.runtime import tune_gc

log = logging.getLogger("cloud.ingest")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cloud.ingest", description=__doc__)
    p.add_argument("--db", required=True, help="SQLAlchemy URL, e.g. sqlite:///linli.db")
    p.add_argument("--host", default="127.0.0.1", help="MQTT broker host")
    p.add_argument("--port", type=int, default=1883, help="MQTT broker port")
    p.add_argument("--client-id", default="linli-ingest", help="stable per ingest process")
    p.add_argument("--site", action="append", help="only this site (repeatable)")
    p.add_argument("--shared-group", help="MQTT 5 shared-subscription group")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--queue-bound", type=int, default=2000)
    p.add_argument(
        "--mode",
        choices=("inprocess", "split"),
        default="inprocess",
        help="split: a receiver process appends to a raw log and acks (docs/cloud-ingest.md)",
    )
    p.add_argument("--rawlog", type=Path, help="split mode: the raw log file (default: see docs)")
    p.add_argument(
        "--receiver-nice", type=int, help="split mode: the receiver's OS niceness (e.g. -5)"
    )
    p.add_argument("--no-create-schema", action="store_true", help="do not migrate at start")
    return p


async def _serve(ingest: Ingest) -> None:
    task = asyncio.create_task(ingest.run(), name="ingest")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = IngestConfig(
            host=args.host,
            port=args.port,
            client_id=args.client_id,
            sites=tuple(args.site) if args.site else None,
            shared_group=args.shared_group,
            batch_size=args.batch_size,
            queue_bound=args.queue_bound,
            mode=args.mode,
            rawlog_path=args.rawlog or default_rawlog(args.client_id, args.db),
            receiver_nice=args.receiver_nice,
        )
    except ValidationError as exc:
        print(f"bad ingest settings: {exc}")
        return 2
    engine = make_engine(args.db)
    if not args.no_create_schema:
        create_schema(engine)
    ingest = Ingest(config, engine, Registry(engine))
    tune_gc()
    asyncio.run(_serve(ingest))
    log.info("ingest stopped: %s", ingest.stats)
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Ingest CPU per message, stage by stage, without a broker: decode and store.

    .venv/bin/python -m bench.ingest_cpu [--messages 3000] [--readings 20]
                                         [--db both|sqlite|postgres] [--baseline REV|none]
                                         [--repeat N]

Builds ``--messages`` telemetry payloads of ``--readings`` readings each (10 gateways, one
device per reading, the shape bench/ingest.py publishes) and feeds them to the real
:class:`cloud.ingest.store.BatchWriter` in batches of 128, the way ingest does: decode a batch
(``BatchWriter.decode``: ``protocols.codec.decode`` per payload), store it in one transaction
(``BatchWriter.store``: dedup, registry, gaps, bulk insert, commit), drop it, next batch.

Per stage it reports this process's CPU time per message (``time.process_time``; PostgreSQL's
own server CPU is not in it, the wall time per message is given beside it), the time spent in
SQL statements (driver ``execute``/``executemany``, from SQLAlchemy's cursor events; COPY runs
on the raw driver and is not in it) and in Python's cyclic garbage collector (all stages).
Each measurement runs in a fresh process. ``--baseline REV`` runs the very same measurement on
the tree of git revision REV (extracted with ``git archive`` into a temporary directory) in the
same run, so "before" and "after" see the same machine load; the default REV is the commit
before readings were keyed by a series id (issue #5, session 4; ``ced1e35`` is the one before
session 3's decode/store work). ``current_gc_frozen`` repeats the current tree with
``gc.freeze()`` after the warm-up (see :func:`measure`). ``--repeat N`` runs baseline, current
and frozen N times in turn and reports each figure's median (the runs' totals beside it): on a
shared machine one run proves little. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.workload import telemetry
from cloud.db import create_schema, make_engine
from cloud.ingest.buffer import Delivery
from cloud.ingest.store import BatchWriter
from cloud.registry import Registry
from linli.services import Postgres
from protocols.codec import encode
from protocols.topics import Channel, topic

BATCH = 128
WARMUP = 200  # messages stored before timing: schema caches, registry admits, first boots
BASELINE_REV = "ef5df9c"
REPO = Path(__file__).resolve().parent.parent


def deliveries(messages: int, readings: int) -> list[Delivery]:
    return [
        Delivery(
            topic("bench", gw, Channel.TELEMETRY), encode(m), i, 1, datetime.now(UTC), 1, False
        )
        for i, (gw, m) in enumerate(telemetry(messages, readings))
    ]


class GcClock:
    """Time spent in the cyclic garbage collector, per generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.runs = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            gen = info["generation"]
            self.seconds[gen] += time.process_time() - self._start
            self.runs[gen] += 1


def measure(url: str, messages: int, readings: int, freeze: bool) -> dict[str, Any]:
    """One run of decode + store over ``messages`` payloads; figures per message.

    ``freeze``: move everything alive after the warm-up to the collector's permanent
    generation (``gc.freeze()``), as a long-running service can after its start-up, so that
    the collections ingest's own garbage triggers no longer walk every module and cache.
    """
    engine = make_engine(url)
    create_schema(engine)
    writer = BatchWriter(engine, Registry(engine))
    batch = deliveries(messages + WARMUP, readings)
    for i in range(0, WARMUP, BATCH):
        writer.write(batch[i : min(i + BATCH, WARMUP)])
    sql = [0.0]
    started: list[float] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _before(*_: Any) -> None:
        started.append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _after(*_: Any) -> None:
        sql[0] += time.perf_counter() - started.pop()

    clock = GcClock()
    gc.collect()
    if freeze:
        gc.freeze()
    gc.callbacks.append(clock)
    decode_cpu = store_cpu = store_wall = 0.0
    rows = 0
    try:
        for i in range(WARMUP, len(batch), BATCH):
            c0 = time.process_time()
            prepared = BatchWriter.decode(batch[i : i + BATCH])
            c1, w1 = time.process_time(), time.perf_counter()
            result = writer.store(prepared)
            c2, w2 = time.process_time(), time.perf_counter()
            decode_cpu += c1 - c0
            store_cpu += c2 - c1
            store_wall += w2 - w1
            rows += result.readings
            del prepared, result
    finally:
        gc.callbacks.remove(clock)
        gc.unfreeze()
    checkpointer = getattr(writer, "checkpointer", None)  # absent in older baselines
    if checkpointer is not None:
        checkpointer.wait()
    engine.dispose()
    per = 1e6 / messages
    return {
        "decode_cpu_us_per_msg": round(decode_cpu * per, 1),
        "store_cpu_us_per_msg": round(store_cpu * per, 1),
        "store_wall_us_per_msg": round(store_wall * per, 1),
        "sql_wall_us_per_msg": round(sql[0] * per, 1),
        "gc_cpu_us_per_msg": round(sum(clock.seconds) * per, 1),
        "gc_runs_by_generation": clock.runs,
        "total_cpu_us_per_msg": round((decode_cpu + store_cpu) * per, 1),
        "points_per_cpu_second": round(rows / (decode_cpu + store_cpu)),
        "readings_stored": rows,
    }


def worker(args: argparse.Namespace) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    if args.sqlite:
        with tempfile.TemporaryDirectory(prefix="linli-cpu-") as tmp:
            url = f"sqlite:///{tmp}/bench.sqlite"
            figures["sqlite"] = measure(url, args.messages, args.readings, args.gc_freeze)
    if args.pg_url:
        figures["postgresql"] = measure(args.pg_url, args.messages, args.readings, args.gc_freeze)
    return figures


def run_tree(
    tree: Path, args: argparse.Namespace, pg_url: str | None, freeze: bool = False
) -> dict[str, Any]:
    """Run the worker in a fresh interpreter on the sources of ``tree``."""
    argv = [sys.executable, "-m", "bench.ingest_cpu", "--worker"]
    if freeze:
        argv.append("--gc-freeze")
    argv += ["--messages", str(args.messages), "--readings", str(args.readings)]
    if args.db in ("both", "sqlite"):
        argv.append("--sqlite")
    if pg_url:
        argv += ["--pg-url", pg_url]
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    return dict(json.loads(done.stdout))


@contextlib.contextmanager
def baseline_tree(rev: str) -> Iterator[Path]:
    """The sources at ``rev``, plus this bench and its workload (which may not exist there)."""
    with tempfile.TemporaryDirectory(prefix="linli-base-") as tmp:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", rev], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
        for name in ("ingest_cpu.py", "workload.py"):
            (Path(tmp) / "bench" / name).write_bytes((Path(__file__).parent / name).read_bytes())
        yield Path(tmp)


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per database, the median of each numeric figure over ``runs`` (others from the first)."""
    if any("error" in run for run in runs):
        return next(run for run in runs if "error" in run)
    out: dict[str, Any] = {}
    for db, first in runs[0].items():
        out[db] = {
            key: (
                round(statistics.median(run[db][key] for run in runs), 1)
                if isinstance(value, int | float)
                else value
            )
            for key, value in first.items()
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.ingest_cpu", description=__doc__)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--readings", type=int, default=20)
    parser.add_argument("--db", choices=("both", "sqlite", "postgres"), default="both")
    parser.add_argument("--baseline", default=BASELINE_REV, help="git revision, or 'none'")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each tree (medians)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--sqlite", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--pg-url", help=argparse.SUPPRESS)
    parser.add_argument("--gc-freeze", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    out: dict[str, Any] = {
        "bench": "ingest_cpu",
        "messages": args.messages,
        "readings_per_message": args.readings,
        "batch": BATCH,
        "units": "µs of CPU (or wall where named) per message of readings_per_message readings",
        "load_avg_1m_start": round(os.getloadavg()[0], 2),
    }
    with contextlib.ExitStack() as stack:
        pg = stack.enter_context(Postgres()) if args.db in ("both", "postgres") else None
        runs = 0

        def pg_url() -> str | None:
            nonlocal runs
            runs += 1
            return pg.create_database(f"cpu_{runs}") if pg else None

        trees: dict[str, tuple[Path, bool]] = {}
        if args.baseline != "none":
            trees["baseline"] = (stack.enter_context(baseline_tree(args.baseline)), False)
        trees["current"] = (REPO, False)
        trees["current_gc_frozen"] = (REPO, True)
        runs_of: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(max(1, args.repeat)):
            for name, (tree, freeze) in trees.items():
                runs_of[name].append(run_tree(tree, args, pg_url(), freeze))
        for name, results in runs_of.items():
            out[name] = median_of(results)
            if name == "baseline":
                out[name] = {"rev": args.baseline, **out[name]}
            if len(results) > 1:
                out[name]["total_cpu_us_per_msg_of_each_run"] = {
                    db: [run.get(db, {}).get("total_cpu_us_per_msg") for run in results]
                    for db in ("sqlite", "postgresql")
                    if db in results[0]
                }
    out["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

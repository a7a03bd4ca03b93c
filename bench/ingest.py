"""Ingest throughput beside a bare subscriber on the same MQTT client library and broker.

    .venv/bin/python -m bench.ingest [--messages 10000] [--readings 20] [--db both|sqlite|URL]

Both consumers drain the same backlog: each first creates its persistent session (subscribe,
disconnect), then a publisher process fills the broker with ``--messages`` telemetry messages
of ``--readings`` readings each, then the consumer connects and is timed from its first
message to its last. The baseline is a bare paho QoS1 subscriber with ingest's own session
settings (MQTT 5, the same filters, clean_start false, session expiry, Receive Maximum, manual
acks): it acknowledges each message in the callback and only counts it. Ingest is
:class:`cloud.ingest.Ingest`: decode, validate, dedup, registry admit, gap tracking, one
transaction per batch, acknowledge after commit. ``ingest_split`` is the same in
``mode="split"`` (what ``linli cloud run`` uses): ``receiver_acked`` is the receiver process's
rate of messages appended to the durable raw log and then acknowledged (the issue's
messages/s ratio: acknowledged once durably stored), ``stored_end_to_end`` the rate at which
they are expanded and committed to the main database (the data points/s target).
``stages_cpu_s`` splits ingest's CPU: paho's network thread (receive, buffer, acks),
decoding, storing (rows, SQL, commit); the rest is the event loop and start-up. The database
defaults to a fresh SQLite file (WAL; ``--db postgres`` starts a local PostgreSQL).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from bench.workload import telemetry
from cloud.db import create_schema, make_engine
from cloud.ingest import Ingest, IngestConfig
from cloud.registry import Registry
from cloud.runtime import tune_gc
from linli.services import Mosquitto, Postgres
from protocols.codec import encode, new_id
from protocols.topics import Channel, topic


def publish(port: int, site: str, messages: int, readings: int) -> None:
    """Publisher process: ``messages`` telemetry messages spread over GATEWAYS gateways."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{new_id()[:8]}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    infos = []
    for gateway, msg in telemetry(messages, readings):
        infos.append(client.publish(topic(site, gateway, Channel.TELEMETRY), encode(msg), qos=1))
        if len(infos) >= 5000:
            for info in infos:
                info.wait_for_publish(60)
            infos.clear()
    for info in infos:
        info.wait_for_publish(60)
    client.disconnect()
    client.loop_stop()


def fill_backlog(port: int, site: str, messages: int, readings: int) -> float:
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.ingest",
            "--publish",
            str(port),
            site,
            str(messages),
            str(readings),
        ],
        check=True,
    )
    return time.monotonic() - started


def broker_cpu() -> float:
    """CPU seconds used so far by the mosquitto this benchmark started (its child process)."""
    import psutil

    return sum(
        sum(p.cpu_times()[:2])
        for p in psutil.Process().children(recursive=True)
        if p.name() == "mosquitto"
    )


class BareSubscriber:
    """paho with ingest's session settings and manual acks; counts and acknowledges."""

    def __init__(self, port: int, site: str, expect: int) -> None:
        self.port, self.expect, self.count = port, expect, 0
        self.first = self.last = 0.0
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self.config = IngestConfig(port=port, client_id=f"bare-{site}", sites=(site,))
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.config.client_id,
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        filters = [(f, SubscribeOptions(qos=1)) for f in self.config.filters()]
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(filters)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message

    def _on_message(self, client: paho.Client, userdata: Any, msg: paho.MQTTMessage) -> None:
        now = time.monotonic()
        if self.count == 0:
            self.first = now
        client.ack(msg.mid, msg.qos)
        self.count += 1
        self.last = now
        if self.count >= self.expect:
            self.done.set()

    def connect(self) -> None:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.max_inflight
        self.client.connect(
            "127.0.0.1",
            self.port,
            keepalive=self.config.keepalive_s,
            clean_start=False,
            properties=props,
        )
        self.client.loop_start()
        self.subscribed.wait(10)

    def disconnect(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.subscribed.clear()


def bench_bare(port: int, messages: int, readings: int) -> dict[str, float]:
    site = f"bare{new_id()[:6]}"
    sub = BareSubscriber(port, site, messages)
    sub.connect()  # create the session
    sub.disconnect()
    fill = fill_backlog(port, site, messages, readings)
    cpu, broker = time.process_time(), broker_cpu()
    sub.connect()
    if not sub.done.wait(300):
        raise RuntimeError(f"bare subscriber got {sub.count}/{messages}")
    cpu, broker = time.process_time() - cpu, broker_cpu() - broker
    sub.disconnect()
    seconds = sub.last - sub.first
    return {
        "seconds": seconds,
        "messages_per_s": messages / seconds,
        "cpu_s": cpu,
        "messages_per_cpu_s": messages / cpu,
        "cpu_us_per_message": cpu / messages * 1e6,
        "mosquitto_cpu_us_per_message": broker / messages * 1e6,
        "fill_s": fill,
    }


def _thread_cpu(native_id: int | None) -> float:
    import psutil

    for t in psutil.Process().threads():
        if t.id == native_id:
            return float(t.user_time + t.system_time)
    return 0.0


async def _run_ingest(ingest: Ingest, until_stored: int | None) -> tuple[float, float, float]:
    """(first message, last stored, CPU seconds of paho's network thread)."""
    task = asyncio.create_task(ingest.run())
    try:
        async with asyncio.timeout(30):
            await ingest.wait_subscribed()
        if until_stored is None:
            return 0.0, 0.0, 0.0
        assert ingest.receiver is not None
        paho_cpu = _thread_cpu(ingest.receiver.thread_id)
        first = 0.0
        async with asyncio.timeout(600):
            while ingest.stats.stored + ingest.stats.duplicates < until_stored:
                if first == 0.0 and (ingest.stats.received or ingest.queue_depth):
                    first = time.monotonic()
                await asyncio.sleep(0.005)
        last = time.monotonic()
        return first, last, _thread_cpu(ingest.receiver.thread_id) - paho_cpu
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def bench_ingest(port: int, messages: int, readings: int, db_url: str) -> dict[str, Any]:
    site = f"ing{new_id()[:6]}"
    engine = make_engine(db_url)
    create_schema(engine)
    config = IngestConfig(port=port, client_id=f"ingest-{site}", sites=(site,))
    asyncio.run(_run_ingest(Ingest(config, engine, Registry(engine)), None))  # the session
    fill = fill_backlog(port, site, messages, readings)
    ingest = Ingest(config, engine, Registry(engine))
    cpu = time.process_time()
    first, last, paho_cpu = asyncio.run(_run_ingest(ingest, messages))
    cpu = time.process_time() - cpu
    engine.dispose()
    seconds = last - first
    return {
        "seconds": seconds,
        "messages_per_s": messages / seconds,
        "points_per_s": messages * readings / seconds,
        "cpu_s": cpu,
        "points_per_cpu_s": messages * readings / cpu,
        "stages_cpu_s": {
            "paho_network_thread": round(paho_cpu, 3),
            "decode": round(ingest.stats.decode_cpu_s, 3),
            "store": round(ingest.stats.store_cpu_s, 3),
            "ack": round(ingest.stats.ack_cpu_s, 3),
        },
        "batches": ingest.stats.batches,
        "fast_lane_batches": ingest.buffer.fast_lane_batches,
        "acked": ingest.stats.acked,
        "stored": ingest.stats.stored,
        "readings": ingest.stats.readings,
        "fill_s": fill,
    }


def _cpu(process: Any) -> float:
    return float(sum(process.cpu_times()[:2]))


async def _run_split(
    ingest: Ingest, messages: int | None, startup_cpu_s: float = 0.0
) -> dict[str, float]:
    """Split mode: times from the receiver's status (POSIX seconds) and the parent's stats.

    The receiver's CPU is counted from its spawn, minus ``startup_cpu_s`` (what a receiver
    spent from spawn to its subscription in the session-creating run, which returns it as
    ``startup_cpu_s``): with a backlog waiting, the receiver is already draining it by the
    time its status says it is subscribed, so a count that started there missed a part."""
    import psutil

    task = asyncio.create_task(ingest.run())
    try:
        async with asyncio.timeout(30):
            while ingest.log_source is None or not ingest.log_source.child_pid:  # noqa: ASYNC110
                await asyncio.sleep(0.001)
            source = ingest.log_source
            child = psutil.Process(source.child_pid)
            at_spawn = _cpu(child)
            await ingest.wait_subscribed()
        if messages is None:
            return {"startup_cpu_s": _cpu(child) - at_spawn}
        acked_at = 0.0
        async with asyncio.timeout(600):
            while ingest.stats.stored + ingest.stats.duplicates < messages:
                status = source.status
                if not acked_at and status.acked >= messages:
                    acked_at = status.last_acked
                await asyncio.sleep(0.005)
            stored_at = time.time()
            while not acked_at:
                status = source.status
                if status.acked >= messages:
                    acked_at = status.last_acked
                await asyncio.sleep(0.005)
        return {
            "first_received": source.status.first_received,
            "acked_at": acked_at,
            "stored_at": stored_at,
            "receiver_cpu_s": max(0.0, _cpu(child) - at_spawn - startup_cpu_s),
            "fast_lane_rows": source.ahead_rows,
        }
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def bench_split(port: int, messages: int, readings: int, db_url: str, tmp: Path) -> dict[str, Any]:
    """Split mode: the receiver process's acknowledged rate and the end-to-end stored rate."""
    site = f"spl{new_id()[:6]}"
    engine = make_engine(db_url)
    create_schema(engine)
    config = IngestConfig(
        port=port,
        client_id=f"ingest-{site}",
        sites=(site,),
        mode="split",
        rawlog_path=tmp / f"rawlog-{site}.sqlite",
    )
    session = asyncio.run(_run_split(Ingest(config, engine, Registry(engine)), None))
    fill = fill_backlog(port, site, messages, readings)
    ingest = Ingest(config, engine, Registry(engine))
    cpu, broker = time.process_time(), broker_cpu()
    t = asyncio.run(_run_split(ingest, messages, session["startup_cpu_s"]))
    cpu, broker = time.process_time() - cpu, broker_cpu() - broker
    engine.dispose()
    acked_s = t["acked_at"] - t["first_received"]
    stored_s = t["stored_at"] - t["first_received"]
    return {
        "receiver_acked": {
            "what": "messages appended to the raw log (durable: same synchronous level as the "
            "main SQLite database) and then acknowledged to the broker, by the receiver process",
            "seconds": acked_s,
            "messages_per_s": messages / acked_s,
            "points_per_s": messages * readings / acked_s,
            "cpu_s": t["receiver_cpu_s"],
            # from the receiver's spawn minus its start-up (measured in the session-creating
            # run); read in clock ticks (10 ms)
            "messages_per_cpu_s": messages / t["receiver_cpu_s"] if t["receiver_cpu_s"] else None,
            "cpu_us_per_message": t["receiver_cpu_s"] / messages * 1e6,
        },
        "stored_end_to_end": {
            "what": "messages expanded (decoded, deduplicated, readings inserted) and committed "
            "to the main database, timed from the first delivery",
            "seconds": stored_s,
            "messages_per_s": messages / stored_s,
            "points_per_s": messages * readings / stored_s,
            "cpu_s": cpu,
            "points_per_cpu_s": messages * readings / cpu,
            "stages_cpu_s": {
                "decode": round(ingest.stats.decode_cpu_s, 3),
                "store": round(ingest.stats.store_cpu_s, 3),
            },
        },
        "mosquitto_cpu_us_per_message": broker / messages * 1e6,
        "batches": ingest.stats.batches,
        "stored": ingest.stats.stored,
        "readings": ingest.stats.readings,
        "fill_s": fill,
    }


def _spawn(db_url: str, port: int, site: str, i: int, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud.ingest",
            "--db",
            db_url,
            "--port",
            str(port),
            "--client-id",
            f"ingest-{site}-{i}",
            "--site",
            site,
            "--shared-group",
            "bench",
            "--no-create-schema",
        ],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def _wait_subscribed(logs: list[Path], times: int) -> None:
    deadline = time.monotonic() + 60
    while any(p.read_text().count(" subscribed") < times for p in logs):
        if time.monotonic() > deadline:
            raise RuntimeError("ingest processes did not subscribe")
        time.sleep(0.05)


def bench_processes(
    port: int, messages: int, readings: int, db_url: str, n: int, tmp: Path
) -> dict[str, Any]:
    """``n`` ingest processes in one MQTT 5 shared-subscription group drain the backlog."""
    import psutil
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from cloud.storage.tables import StoredEnvelope

    site = f"mp{new_id()[:6]}"
    engine = make_engine(db_url)
    create_schema(engine)
    logs = [tmp / f"ingest-{i}.log" for i in range(n)]
    procs = [_spawn(db_url, port, site, i, logs[i]) for i in range(n)]
    _wait_subscribed(logs, 1)  # the sessions exist now
    for proc in procs:
        proc.terminate()
        proc.wait(30)
    fill = fill_backlog(port, site, messages, readings)

    def stored() -> int:
        with Session(engine) as s:
            q = select(func.count(StoredEnvelope.id)).where(StoredEnvelope.site == site)
            return int(s.scalar(q) or 0)

    procs = [_spawn(db_url, port, site, i, logs[i]) for i in range(n)]
    try:
        first = 0.0
        deadline = time.monotonic() + 600
        while (done := stored()) < messages and time.monotonic() < deadline:
            if first == 0.0 and done > 0:
                first = time.monotonic()
            time.sleep(0.02)
        last = time.monotonic()
        cpu = sum(sum(psutil.Process(p.pid).cpu_times()[:2]) for p in procs)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        engine.dispose()
    seconds = last - first
    return {
        "processes": n,
        "seconds": seconds,
        "messages_per_s": messages / seconds,
        "points_per_s": messages * readings / seconds,
        "cpu_s": cpu,
        "points_per_cpu_s": messages * readings / cpu,
        "fill_s": fill,
        "note": "wall time from the first stored message (process start-up excluded); "
        "cpu_s includes start-up",
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--publish":
        publish(int(argv[1]), argv[2], int(argv[3]), int(argv[4]))
        return 0
    p = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__)
    p.add_argument("--messages", type=int, default=10_000)
    p.add_argument("--readings", type=int, default=20, help="readings per message")
    p.add_argument(
        "--db",
        default="both",
        help="'sqlite' (a fresh file), 'postgres' (starts a local PostgreSQL), 'both' "
        "(default: SQLite as 'ingest', PostgreSQL as 'ingest_postgres') or a SQLAlchemy URL",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="also measure N ingest processes in one MQTT 5 shared-subscription group",
    )
    args = p.parse_args(argv)
    tune_gc()  # as `linli cloud run` does (the bare subscriber runs under the same settings)
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="linli-bench-"))
        broker = stack.enter_context(Mosquitto())
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        pg_url: str | None = None
        if args.db in ("postgres", "both"):
            pg_url = stack.enter_context(Postgres()).create_database("linli_bench")
        db_url = {"sqlite": sqlite_url, "both": sqlite_url, "postgres": pg_url}.get(
            args.db, args.db
        )
        assert db_url is not None
        bare = bench_bare(broker.port, args.messages, args.readings)
        ingest = bench_ingest(broker.port, args.messages, args.readings, db_url)
        split = bench_split(broker.port, args.messages, args.readings, db_url, Path(tmp))
        for part in ("receiver_acked", "stored_end_to_end"):
            split[part]["ratio_messages_vs_bare"] = (
                split[part]["messages_per_s"] / bare["messages_per_s"]
            )
        # The bare subscriber runs alone; the receiver shares the 2 cores with the expander
        # (and mosquitto): per CPU-second is the comparison that does not depend on that.
        per_cpu = split["receiver_acked"]["messages_per_cpu_s"]
        split["receiver_acked"]["ratio_messages_per_cpu_s_vs_bare"] = (
            per_cpu / bare["messages_per_cpu_s"] if per_cpu else None
        )
        on_pg = None
        if args.db == "both" and pg_url is not None:
            on_pg = bench_ingest(broker.port, args.messages, args.readings, pg_url)
            on_pg["ratio_messages_vs_bare"] = on_pg["messages_per_s"] / bare["messages_per_s"]
        multi = (
            bench_processes(
                broker.port, args.messages, args.readings, db_url, args.processes, Path(tmp)
            )
            if args.processes > 1
            else None
        )
    result = {
        "benchmark": "ingest",
        "messages": args.messages,
        "readings_per_message": args.readings,
        "database": db_url.split(":", 1)[0].split("+")[0],
        "ingest": ingest,
        "bare_subscriber": bare,
        "ingest_postgres": on_pg,
        # mode="split": the ratio is the receiver's (a message is acknowledged once
        # durably stored in the raw log); the 50k points/s target is the end-to-end rate.
        "ingest_split": split,
        "ingest_shared_group": multi,
        "ratio_messages_vs_bare": ingest["messages_per_s"] / bare["messages_per_s"],
        # The machine is shared: the load average says how much of the 2 cores we had, and
        # CPU-seconds give a figure that depends less on it (both phases in this process).
        "load_average_1m": os.getloadavg()[0],
        "cores": os.cpu_count(),
        "targets": {"points_per_s": 50_000, "ratio_messages_vs_bare": 0.8},
        "units": {
            "seconds": "s",
            "messages_per_s": "msg/s",
            "points_per_s": "readings/s",
            "cpu_s": "CPU seconds of this process (all threads) while draining",
            "points_per_cpu_s": "readings per CPU second",
        },
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

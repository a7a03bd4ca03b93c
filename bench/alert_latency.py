"""Alert latency: smoke reading published → alert on the WebSocket ``/api/stream``.

Runs a real mosquitto, the real cloud (``python -m cloud run`` as a subprocess, SQLite) and a
background load of temperature readings from another process, then publishes smoke probes (one
new device each, so each probe is a new alert) and times publish → WebSocket event. Measured
twice in the same run: idle (baseline) and under the background load. Prints one JSON object.

    .venv/bin/python -m bench.alert_latency [--rate 20000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import psutil
import websockets
from paho.mqtt.enums import CallbackAPIVersion

from linli.services import Mosquitto, Postgres
from linli.services.base import free_port
from protocols.codec import encode, new_id
from protocols.messages import Reading, Telemetry
from protocols.topics import Channel, topic

SITE = "bench"
LOAD_GATEWAY = "gw-load"
PROBE_GATEWAY = "gw-probe"
LOAD_DEVICES = 100
PROBES = 400
LATE_S = 20.0
"""Probes whose alert has not arrived this long after the last probe count as missing."""


def site_file(path: Path) -> None:
    load = [
        {"id": f"temp-{i}", "kind": "temperature", "zone": "z1", "building": "b1"}
        for i in range(LOAD_DEVICES)
    ]
    probes = [{"id": f"smoke-{i}", "kind": "smoke", "zone": "z2"} for i in range(PROBES)]
    data = {
        "site": SITE,
        "buildings": [{"id": "b1"}],
        "zones": [{"id": "z1", "building": "b1"}, {"id": "z2"}],
        "gateways": [
            {"id": LOAD_GATEWAY, "devices": load},
            {"id": PROBE_GATEWAY, "devices": probes},
        ],
    }
    path.write_text(json.dumps(data))  # JSON is YAML


def load_generator(port: int, rate: float, seconds: float, sent: Any) -> None:
    """Publish ``rate`` readings/s (100 per message, QoS1) for ``seconds``."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-load-{os.getpid()}")
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    t = topic(SITE, LOAD_GATEWAY, Channel.TELEMETRY)
    per_msg = LOAD_DEVICES
    interval = per_msg / rate
    # The payload is made once and patched per message (msg_id, seq), so the generator's own
    # CPU stays small next to the cloud's on the shared cores.
    now = datetime.now(UTC)
    marker = "X" * 32
    template = encode(
        Telemetry(
            msg_id=marker, boot_id=new_id(), seq=999_999_999, ts=now,
            readings=tuple(
                Reading(device=f"temp-{i}", metric="temperature", value=21.0 + i / 100, ts=now)
                for i in range(per_msg)
            ),
        )
    )  # fmt: skip
    start = time.monotonic()
    seq = 0
    while time.monotonic() - start < seconds:
        payload = template.replace(marker.encode(), new_id().encode()).replace(
            b'"seq":999999999', b'"seq":%d' % seq
        )
        client.publish(t, payload, qos=1)
        seq += 1
        sent.value = seq * per_msg
        delay = start + seq * interval - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    client.loop_stop()
    client.disconnect()


def http_json(url: str, token: str | None = None) -> Any:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


def metric(base: str, name: str) -> float:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(name + " ") or line.startswith(name + "_total "):
                return float(line.split()[-1])
    return 0.0


BACKLOGS = ("linli_ingest_queue_depth", "linli_rules_backlog", "linli_rule_effects_backlog")


async def sample_backlogs(base: str, into: dict[str, float]) -> None:
    """The largest queue depth of each pipeline stage seen, sampled every half second."""
    while True:
        for name in BACKLOGS:
            value = await asyncio.to_thread(metric, base, name)
            into[name] = max(into[name], value)
        await asyncio.sleep(0.5)


class Prober:
    def __init__(self, port: int) -> None:
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id="bench-probe")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.boot = new_id()
        self.seq = 0
        self.sent: dict[str, float] = {}

    def probe(self, device: str) -> None:
        now = datetime.now(UTC)
        msg = Telemetry(
            msg_id=new_id(), boot_id=self.boot, seq=self.seq, ts=now,
            readings=(Reading(device=device, metric="smoke", value=True, ts=now),),
        )  # fmt: skip
        self.seq += 1
        self.sent[device] = time.perf_counter()
        self.client.publish(topic(SITE, PROBE_GATEWAY, Channel.TELEMETRY), encode(msg), qos=1)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


async def measure(ws: Any, prober: Prober, first: int, count: int, every_s: float) -> list[float]:
    latencies: dict[str, float] = {}

    async def receive() -> None:
        async for raw in ws:
            event = json.loads(raw)
            if event.get("type") == "alert" and event.get("change") == "created":
                subject = event["alert"]["subject"]
                if subject in prober.sent and subject not in latencies:
                    latencies[subject] = (time.perf_counter() - prober.sent[subject]) * 1000
                    if len(latencies) == count:
                        return

    reader = asyncio.create_task(receive())
    for i in range(first, first + count):
        prober.probe(f"smoke-{i}")
        await asyncio.sleep(every_s)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reader), timeout=LATE_S)
    reader.cancel()
    return list(latencies.values())


def summary(values: list[float], expected: int) -> dict[str, Any]:
    if not values:
        return {"n": 0, "expected": expected}
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "n": len(values),
        "expected": expected,
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1], 1),
        "mean_ms": round(statistics.fmean(ordered), 1),
    }


def make_user(db_url: str) -> str:
    from sqlalchemy.orm import Session

    from cloud.auth import service as accounts
    from cloud.auth.deps import Role
    from cloud.db import create_schema, make_engine

    engine = make_engine(db_url)
    create_schema(engine)
    with Session(engine) as db:
        user = accounts.create_user(db, "bench", "bench password 12345", Role.VIEWER)
        token, _ = accounts.issue_token(db, user, 3600)
        db.commit()
    engine.dispose()
    return token


def start_cloud(
    args: argparse.Namespace, broker: Mosquitto, workdir: Path, db_url: str
) -> tuple[subprocess.Popen[bytes], int, str]:
    """Import the site, make a viewer token, start ``python -m cloud run``."""
    site_path = workdir / "site.yaml"
    site_file(site_path)
    py = sys.executable
    subprocess.run([py, "-m", "cloud", "import-site", str(site_path), "--db", db_url], check=True,
                   capture_output=True)  # fmt: skip
    token = make_user(db_url)
    port = free_port()
    env = {**os.environ, "LINLI_TICK_S": "0.5", **dict(e.split("=", 1) for e in args.env)}
    with (workdir / "cloud.log").open("wb") as log:
        cloud = subprocess.Popen(
            [py, "-m", "cloud", "run", "--port", str(port), "--db", db_url,
             "--mqtt", f"127.0.0.1:{broker.port}", "--log-level", "warning",
             *(["--ingest-mode", args.ingest_mode] if args.ingest_mode else [])],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return cloud, port, token


def _cpu_with_children(proc: psutil.Process) -> float:
    """CPU seconds of the cloud and its children (split ingest's receiver process)."""
    total = 0.0
    for p in (proc, *proc.children(recursive=True)):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(p.cpu_times()[:2])
    return total


async def wait_ready(base: str, cloud: subprocess.Popen[bytes], workdir: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            status = await asyncio.to_thread(http_json, f"{base}/ready")
            if status["status"] == "ready":
                return
        except OSError:
            pass
        if time.monotonic() > deadline or cloud.poll() is not None:
            raise RuntimeError(f"cloud did not become ready; see {workdir / 'cloud.log'}")
        await asyncio.sleep(0.2)


async def run(
    args: argparse.Namespace,
    broker: Mosquitto,
    workdir: Path,
    cloud: subprocess.Popen[bytes],
    port: int,
    token: str,
) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    await wait_ready(base, cloud, workdir)
    prober = Prober(broker.port)
    url = f"ws://127.0.0.1:{port}/api/stream?token={token}&topics=alert"
    async with websockets.connect(url) as ws:
        await ws.recv()  # hello
        idle_n = args.idle_probes
        idle = await measure(ws, prober, 0, idle_n, args.every)
        sent = multiprocessing.Value("q", 0)
        backlogs: dict[str, float] = dict.fromkeys(BACKLOGS, 0.0)
        readings_before = await asyncio.to_thread(metric, base, "linli_ingest_readings")
        gen = multiprocessing.Process(
            target=load_generator, args=(broker.port, args.rate, args.seconds, sent)
        )
        gen.start()
        proc = psutil.Process(cloud.pid)
        cpu_before, wall_before = _cpu_with_children(proc), time.monotonic()
        await asyncio.sleep(3)  # let the load settle
        loaded_n = int((args.seconds - 4) / args.every)
        sampler = asyncio.create_task(sample_backlogs(base, backlogs))
        loaded = await measure(ws, prober, idle_n, loaded_n, args.every)
        sampler.cancel()
        cloud_cpu = 100 * (_cpu_with_children(proc) - cpu_before) / (time.monotonic() - wall_before)
        await asyncio.to_thread(gen.join, args.seconds + 30)
        readings_after = await asyncio.to_thread(metric, base, "linli_ingest_readings")
        effects_max = await asyncio.to_thread(metric, base, "linli_rule_effects_max_seconds")
    prober.close()
    stored = int(readings_after - readings_before)
    return {
        "benchmark": "alert_latency",
        "what": "smoke reading published (paho QoS1) -> alert event on /api/stream",
        "setup": {
            "broker": "mosquitto (local)",
            "database": "SQLite WAL" if args.db == "sqlite" else "PostgreSQL (local)",
            "cloud": "python -m cloud run (uvicorn: ingest + rules + API in one process; in "
            "split mode plus its receiver process)",
            "ingest_mode": args.ingest_mode or "split (linli cloud run's default)",
            "background": f"{LOAD_DEVICES} temperature devices, {LOAD_DEVICES} readings per "
            "message, QoS1, from another process",
            "cpus": os.cpu_count(),
        },
        "background_target_points_per_s": args.rate,
        "background_sent_points": sent.value,
        "background_sent_points_per_s": round(sent.value / args.seconds),
        "ingest_stored_points_by_end_of_load_phase": stored,
        "cloud_cpu_percent_under_load": round(cloud_cpu),  # with the receiver process
        "slowest_alert_transaction_ms": round(effects_max * 1000, 1),
        "max_backlogs_under_load": backlogs,
        "baseline_idle": summary(idle, idle_n),
        "under_load": summary(loaded, loaded_n),
        "target_p99_ms": 250,
        "units": "milliseconds; points per second",
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.alert_latency", description=__doc__)
    p.add_argument("--rate", type=float, default=20_000, help="background readings per second")
    p.add_argument("--seconds", type=float, default=30, help="length of the loaded phase")
    p.add_argument("--every", type=float, default=0.2, help="seconds between probes")
    p.add_argument("--idle-probes", type=int, default=40)
    p.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--env", action="append", default=[], help="NAME=VALUE for the cloud")
    p.add_argument(
        "--ingest-mode",
        choices=("split", "inprocess"),
        help="the cloud's ingest mode (default: what linli cloud run uses, split)",
    )
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="linli-bench-"))
        broker = stack.enter_context(Mosquitto())
        if args.db == "postgres":
            server = stack.enter_context(Postgres())
            db_url = server.create_database("linli_bench")
        else:
            db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        cloud, port, token = start_cloud(args, broker, Path(tmp), db_url)
        try:
            result = asyncio.run(run(args, broker, Path(tmp), cloud, port, token))
        finally:
            cloud.terminate()
            try:
                cloud.wait(20)
            except subprocess.TimeoutExpired:
                cloud.kill()
    result["machine_load_average_1m"] = {"before": load_before[0], "after": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""10,000 simulated devices from one process for 60 s, through the real edge agents.

    .venv/bin/python -m bench.sim_scale [--devices 10000] [--seconds 60]

Starts a mosquitto on a free port, a counting subscriber in a separate process (so its CPU is
not charged to the simulator), and one simulator process's worth of gateways (500 devices
each) reading their devices at realistic rates (5 s for PIR and door contacts … 300 s for tanks),
reporting on change (deadband 0.2) or every 300 s. Prints one JSON object: messages/s and
readings/s received by the subscriber, messages published by the agents, nominal device
reads/s, and the simulator's own CPU (% of one core) and peak RSS. The baseline beside it is the
cost of the device models alone: reads/s of the same 10,000 VirtualDevices in a tight loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from linli.services import Mosquitto
from protocols.codec import decode
from protocols.errors import ProtocolError
from protocols.messages import Telemetry
from protocols.topics import topic_filter
from simulators.clock import SimClock
from simulators.devices import make_device
from simulators.gateways import SimSite
from simulators.site import SiteOptions, site_configs
from simulators.sitegen import scale_site


def _subscriber(port: int, site: str, seconds: float) -> int:
    """Count messages and readings of one site; print JSON on a line on stdin (or timeout)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    counts = {"messages": 0, "readings": 0, "rejected": 0}

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        counts["messages"] += 1
        try:
            message = decode(msg.topic, bytes(msg.payload), uplink=True).message
        except ProtocolError:
            counts["rejected"] += 1
            return
        if isinstance(message, Telemetry):
            counts["readings"] += len(message.readings)

    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.subscribe(topic_filter(None, site), qos=0)
    client.loop_start()
    print("ready", flush=True)
    import select

    select.select([sys.stdin], [], [], seconds)
    client.loop_stop()
    print(json.dumps(counts), flush=True)
    return 0


def _model_baseline(devices: int, seconds: float = 2.0) -> float:
    """Reads/s of the device models alone, in a tight loop (no agent, no I/O)."""
    kinds = [spec.kind for _, spec in scale_site(devices).devices]
    models = [make_device(k, f"d{i}", seed=i) for i, k in enumerate(kinds)]
    now, reads = 1_780_000_000.0, 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for m in models:
            m.read(now)
        reads += len(models)
        now += 1.0
    return reads / (time.perf_counter() - start)


async def _run(
    port: int, devices: int, seconds: float, state: Path, cap: float | None
) -> dict[str, object]:
    sitefile = scale_site(devices, site="scale")
    configs = site_configs(
        sitefile,
        SiteOptions(
            port=port, state_dir=state, report_period=300.0, deadband=0.2, max_interval=cap
        ),
    )
    nominal = sum(len(d.devices) / d.interval for c in configs for d in c.drivers)
    proc = psutil.Process()
    clock = SimClock.start()
    async with SimSite(configs, clock.now, proxies=False) as sim:
        await sim.wait_connected(within=60.0)
        cpu0 = proc.cpu_times()
        t0 = time.monotonic()
        peak_rss = proc.memory_info().rss
        published0 = sum(g.agent.sender.published for g in sim.gateways.values())
        while (elapsed := time.monotonic() - t0) < seconds:
            await asyncio.sleep(min(1.0, seconds - elapsed))
            peak_rss = max(peak_rss, proc.memory_info().rss)
        cpu1 = proc.cpu_times()
        wall = time.monotonic() - t0
        published = sum(g.agent.sender.published for g in sim.gateways.values()) - published0
        depth = sim.depth()
        gateways = len(sim.gateways)
        count = sum(len(g.devices) for g in sim.gateways.values())
    cpu = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
    return {
        "devices": count,
        "gateways": gateways,
        "seconds": round(wall, 1),
        "nominal_device_reads_per_s": round(nominal, 1),
        "published_messages_per_s": round(published / wall, 1),
        "outbox_depth_at_end": depth,
        "cpu_percent_of_one_core": round(100.0 * cpu / wall, 1),
        "peak_rss_mb": round(peak_rss / 2**20, 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.sim_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", type=int, default=10_000)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument(
        "--interval-cap", type=float, help="read every device at least this often (s): stress"
    )
    p.add_argument("--subscriber", nargs=3, metavar=("PORT", "SITE", "SECONDS"), help="internal")
    args = p.parse_args(argv)
    if args.subscriber:
        port, site, secs = args.subscriber
        return _subscriber(int(port), site, float(secs))
    baseline = _model_baseline(args.devices)
    with Mosquitto() as broker, tempfile.TemporaryDirectory(prefix="sim-scale-") as tmp:
        sub = subprocess.Popen(
            [sys.executable, "-m", "bench.sim_scale", "--subscriber", str(broker.port), "scale",
             str(args.seconds + 30)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            assert sub.stdout is not None
            sub.stdout.readline()  # "ready"
            t_start = time.monotonic()
            figures = asyncio.run(
                _run(broker.port, args.devices, args.seconds, Path(tmp), args.interval_cap)
            )
            received_window = time.monotonic() - t_start
            out, _ = sub.communicate("stop\n", timeout=30)
        finally:
            if sub.poll() is None:
                sub.kill()
                sub.wait()
    lines = [line for line in out.splitlines() if line.startswith("{")]
    counts = json.loads(lines[-1]) if lines else None
    result: dict[str, object] = {
        "bench": "sim_scale",
        "interval_cap_s": args.interval_cap,
        **figures,
        "subscriber": counts,
        "note": "subscriber counts cover connect + run + shutdown; rates below use the run time",
        "units": {"rates": "per second", "cpu": "% of one core", "rss": "MiB"},
        "baseline": {
            "what": "device models alone (VirtualDevice.read in a tight loop, no agent)",
            "model_reads_per_s": round(baseline, 0),
        },
    }
    if counts is not None:
        result["received_messages_per_s"] = round(counts["messages"] / received_window, 1)
        result["received_readings_per_s"] = round(counts["readings"] / received_window, 1)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

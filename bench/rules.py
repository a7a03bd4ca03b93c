"""Rule evaluation throughput: data points/s through ``observations_from`` and ``observe``.

    .venv/bin/python -m bench.rules [--devices N] [--seconds S]

Prints one JSON object. The stream is a residential site mix (heat, smoke, gas, humidity,
e-bike chargers, water tanks, PIR, door contacts) reporting once per simulated second in
batches of 100 readings, a few of them over a threshold, through the default cloud pack.
Baseline measured in the same run: the same observations matched by scanning every rule's
selector (what the (kind, signal) index avoids), without evaluating anything.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from protocols.codec import Decoded, decode, encode, new_id
from protocols.kinds import DeviceKind
from protocols.messages import Reading, Telemetry
from protocols.rules import Observation, RuleEngine, Selector, default_pack, observations_from
from protocols.rules.language import Correlation
from protocols.topics import Channel, topic

T0 = datetime(2026, 1, 5, tzinfo=UTC)
MIX: list[tuple[DeviceKind, str, Callable[[random.Random], float | bool]]] = [
    (
        DeviceKind.HEAT,
        "temperature",
        lambda r: 22 + r.random() * 4 + (40 if r.random() < 0.001 else 0),
    ),
    (DeviceKind.SMOKE, "smoke", lambda r: r.random() < 0.0005),
    (DeviceKind.GAS, "co", lambda r: r.random() * 10),
    (DeviceKind.GAS, "ch4", lambda r: r.random() * 3),
    (DeviceKind.HUMIDITY, "humidity", lambda r: 40 + r.random() * 20),
    (DeviceKind.EBIKE_CHARGER, "current", lambda r: 3 + r.random() * 3),
    (DeviceKind.WATER_TANK, "level", lambda r: 60 + r.random() * 20),
    (DeviceKind.PIR, "motion", lambda r: r.random() < 0.2),
    (DeviceKind.DOOR_CONTACT, "open", lambda r: r.random() < 0.05),
]


def _stream(devices: int, seconds: int) -> tuple[list[Decoded], Callable[..., Any]]:
    rng = random.Random(7)
    table = {f"d{i}": (MIX[i % len(MIX)], f"z{i % 200}", f"b{i % 20}") for i in range(devices)}

    def lookup(site: str, device: str) -> tuple[DeviceKind, str, str] | None:
        entry = table.get(device)
        return None if entry is None else (entry[0][0], entry[1], entry[2])

    messages = []
    seq = 0
    boot = new_id()
    for s in range(seconds):
        ts = T0 + timedelta(seconds=s)
        names = list(table)
        for start in range(0, len(names), 100):
            readings = tuple(
                Reading(device=d, metric=table[d][0][1], value=table[d][0][2](rng), ts=ts)
                for d in names[start : start + 100]
            )
            seq += 1
            msg = Telemetry(msg_id=new_id(), boot_id=boot, seq=seq, ts=ts, readings=readings)
            gateway = f"gw{start // 1000}"
            messages.append(decode(topic("site1", gateway, Channel.TELEMETRY), encode(msg)))
    return messages, lookup


def _scan_baseline(observations: list[Observation]) -> float:
    selectors: list[Selector] = []
    for rule in default_pack().for_cloud():
        if isinstance(rule.when, Correlation):
            selectors.extend(m.select for m in rule.when.all_of)
        elif rule.select is not None:
            selectors.append(rule.select)

    def matches(sel: Selector, o: Observation) -> bool:
        return (
            (sel.kind is None or o.kind in sel.kind)
            and (sel.metric is None or o.metric == sel.metric)
            and (sel.event is None or o.event == sel.event)
            and (sel.access is None or o.access in sel.access)
        )

    start = time.perf_counter()
    hits = 0
    for o in observations:
        for sel in selectors:
            if matches(sel, o):
                hits += 1
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.rules", description=__doc__)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=20, help="simulated seconds of data")
    args = parser.parse_args(argv)

    messages, lookup = _stream(args.devices, args.seconds)
    # Streamed as the cloud does: convert one message, evaluate it, drop it. Retaining every
    # observation would mostly measure the garbage collector.
    for m in messages[:50]:
        observations_from(m, lookup)  # warm-up
    engine = RuleEngine(default_pack().for_cloud())
    actions = 0
    t_convert = t_observe = advance_s = 0.0
    n = 0
    per_second = max(1, len(messages) // max(1, args.seconds))
    for i, m in enumerate(messages):
        t = time.perf_counter()
        batch = observations_from(m, lookup)
        t_convert += time.perf_counter() - t
        t = time.perf_counter()
        for obs in batch:
            actions += len(engine.observe(obs))
        t_observe += time.perf_counter() - t
        n += len(batch)
        if (i + 1) % per_second == 0:
            t = time.perf_counter()
            actions += len(engine.advance(batch[-1].ts))
            advance_s += time.perf_counter() - t
    sample = [
        o for m in messages[: max(1, len(messages) // 10)] for o in observations_from(m, lookup)
    ]
    t_scan = _scan_baseline(sample) * n / len(sample)
    print(
        json.dumps(
            {
                "bench": "rules",
                "devices": args.devices,
                "data_points": n,
                "rules": len(default_pack().for_cloud()),
                "observations_from_points_per_s": round(n / t_convert),
                "observe_points_per_s": round(n / t_observe),
                "convert_and_observe_points_per_s": round(n / (t_convert + t_observe)),
                "advance_ms_per_call": round(advance_s / max(1, args.seconds) * 1000, 3),
                "actions": actions,
                "active_alerts": len(engine.active()),
                "baseline_scan_every_rule_points_per_s": round(n / t_scan),
                "units": "data points per second of one core; advance in ms",
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Acceptance: a full disk budget drops telemetry by the policy, never safety events, and counts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from edge.agent import EdgeAgent
from edge.drivers.simulated import SimulatedDriver
from edge.outbox import Lane
from edge.testing import Subscriber, edge_config, running, until
from linli.services import Mosquitto
from protocols.messages import DeviceEvent, Envelope, EventPriority, Telemetry

pytestmark = pytest.mark.anyio

DRIVER = {
    "type": "simulated",
    "name": "sim",
    "interval": 0.01,
    "devices": [{"id": f"t-{i}", "kind": "temperature", "seed": i} for i in range(30)]
    + [{"id": "smoke-1", "kind": "smoke", "seed": 99}],
}


async def test_full_budget_drops_oldest_telemetry_keeps_safety_and_counts(
    tmp_path: Path,
    own_mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(own_mosquitto, site)
    own_mosquitto.stop()  # a long outage: everything piles up in the outbox
    config = edge_config(
        tmp_path,
        own_mosquitto,
        site,
        drivers=[DRIVER],
        report={"mode": "period", "period": 0.001},
        outbox={"budget_mb": 0.25},  # the smallest budget: room for ~150 telemetry messages
        health={"interval": 0.5},
    )
    agent = EdgeAgent(config)
    async with running(agent):
        driver = agent.drivers[0]
        assert isinstance(driver, SimulatedDriver)
        smoke = driver.virtual["smoke-1"]
        for _ in range(5):  # five alarms and five clears, while the budget overflows
            await until(lambda: agent.outbox.counters["dropped_telemetry"] > 0, 20)
            smoke.force("smoke", True)
            await until(lambda: agent.outbox.depth_by_lane()[Lane.SAFETY] % 2 == 1, 5)
            smoke.force("smoke", False)
            await until(lambda: agent.outbox.depth_by_lane()[Lane.SAFETY] % 2 == 0, 5)
        await until(lambda: agent.outbox.counters["dropped_telemetry"] > 50, 30)
        box = agent.outbox
        assert box.used_bytes() <= box.budget_bytes
        assert box.depth_by_lane()[Lane.SAFETY] == 10
        own_mosquitto.start()
        await until(lambda: agent.uplink.connected, 20, "reconnected")
        await until(lambda: agent.sender.idle, 30, "outbox drained")
        counters = dict(box.counters)
        made = agent.stamper.next_seq

        def health_reports_drops(_: object) -> bool:
            return any(
                r.metric == "dropped" and r.value > 0
                for d in sub.snapshot()
                if isinstance(d.message, Telemetry)
                for r in d.message.readings
            )

        await sub.await_for(health_reports_drops, 10)  # the next health report says so

    def received() -> dict[str, Envelope]:
        out: dict[str, Envelope] = {}
        for d in sub.snapshot():
            if isinstance(d.message, Envelope) and d.message.boot_id == agent.boot_id:
                out.setdefault(d.message.msg_id, d.message)
        return out

    def all_in(_: object) -> bool:
        seqs = {m.seq for m in received().values()}
        return len(set(range(made)) - seqs) <= counters["dropped_messages"]

    await sub.await_for(all_in, 20)  # the subscriber may lag behind the broker's acks
    unique = received()
    safety = [
        m
        for m in unique.values()
        if isinstance(m, DeviceEvent) and m.priority is EventPriority.SAFETY
    ]
    assert sorted(m.event for m in safety) == ["smoke.alarm"] * 5 + ["smoke.clear"] * 5
    # what the cloud will see as seq gaps is exactly what the counters say was dropped
    seqs = {m.seq for m in unique.values()}
    missing = set(range(made)) - seqs
    assert len(missing) == counters["dropped_messages"] == counters["dropped_telemetry"] > 50
    assert counters["dropped_events"] == 0
    assert counters["dropped_readings"] >= counters["dropped_telemetry"] * 10

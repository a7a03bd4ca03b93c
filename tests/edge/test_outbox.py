"""The outbox alone: lanes, the disk budget's drop policy, acks, restarts, the historical flag."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from edge.envelope import Stamper
from edge.outbox import Lane, Outbox
from protocols.codec import decode
from protocols.messages import (
    AccessDecision,
    AccessEvent,
    AccessKind,
    AckStatus,
    CommandAck,
    DeviceEvent,
    EventPriority,
    Reading,
    Telemetry,
)
from protocols.topics import Channel, topic

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def telemetry(stamper: Stamper, n: int = 1, device: str = "t-1") -> Telemetry:
    readings = tuple(
        Reading(device=device, metric="temperature", value=20.0 + i, unit="°C", ts=NOW)
        for i in range(n)
    )
    return stamper.stamp(Telemetry, ts=NOW, readings=readings)


def smoke(stamper: Stamper) -> DeviceEvent:
    return stamper.stamp(
        DeviceEvent, device="s-1", event="smoke.alarm", priority=EventPriority.SAFETY, value=True
    )


def access(stamper: Stamper) -> AccessEvent:
    return stamper.stamp(
        AccessEvent,
        door="d-1",
        kind=AccessKind.DECISION,
        decision=AccessDecision.GRANTED,
        reason="allow_list",
    )


def test_lanes_send_safety_then_access_and_acks_then_telemetry(tmp_path: Path) -> None:
    s = Stamper()
    box = Outbox.open(tmp_path / "o.db", 10**9)
    t = telemetry(s)
    normal = s.stamp(DeviceEvent, device="p-1", event="door.opened")
    ack = s.stamp(CommandAck, cmd_id="c" * 16, status=AckStatus.OK)
    a = access(s)
    alarm = smoke(s)
    box.put_many([t, normal, ack, a, alarm])
    rows = box.next_batch(10)
    assert [r.msg_id for r in rows] == [alarm.msg_id, ack.msg_id, a.msg_id, normal.msg_id, t.msg_id]
    assert [r.lane for r in rows] == [
        Lane.SAFETY,
        Lane.PRIORITY,
        Lane.PRIORITY,
        Lane.EVENT,
        Lane.TELEMETRY,
    ]
    assert box.next_batch(10) == [], "rows handed out are not handed out again"
    box.rewind()
    assert len(box.next_batch(10)) == 5


def test_delete_only_after_ack_and_survive_reopen(tmp_path: Path) -> None:
    s = Stamper()
    path = tmp_path / "o.db"
    box = Outbox.open(path, 10**9)
    msgs = [telemetry(s) for _ in range(5)]
    box.put_many(msgs)
    rows = box.next_batch(3)
    assert box.ack([rows[0].id, rows[1].id]) == 2
    assert box.depth == 3
    box.conn.close()  # as a crash would: no clean shutdown
    again = Outbox.open(path, 10**9)
    left = again.next_batch(10)
    assert [r.msg_id for r in left] == [m.msg_id for m in msgs[2:]]
    assert again.depth == 3
    assert again.counters["sent"] == 2 and again.counters["stored"] == 5
    # the stored payload is the whole message as made: same msg_id, boot id and seq
    decoded = decode(topic("s1", "gw1", Channel.TELEMETRY), left[0].payload)
    assert decoded.message == msgs[2]


def test_budget_drops_oldest_telemetry_never_safety_or_access(tmp_path: Path) -> None:
    s = Stamper()
    budget = 256 * 1024  # room for about 1000 telemetry messages of 10 readings (compressed)
    box = Outbox.open(tmp_path / "o.db", budget, synchronous="normal")
    safety = []
    accesses = []
    kept_telemetry = []
    for i in range(2000):
        if i % 10 == 0:
            safety.append(smoke(s))
            box.put(safety[-1])
        elif i % 10 == 5:
            accesses.append(access(s))
            box.put(accesses[-1])
        else:
            kept_telemetry.append(telemetry(s, n=10))
            box.put(kept_telemetry[-1])
    assert box.used_bytes() <= budget
    by_lane = box.depth_by_lane()
    assert by_lane[Lane.SAFETY] == len(safety) == 200
    assert by_lane[Lane.PRIORITY] == len(accesses) == 200
    stored = {r.msg_id for r in box.next_batch(1000)}
    assert {m.msg_id for m in safety + accesses} <= stored
    left = [m.msg_id for m in kept_telemetry if m.msg_id in stored]
    dropped = len(kept_telemetry) - len(left)
    assert dropped > 0
    # oldest first: what is left is the newest telemetry, contiguous
    assert left == [m.msg_id for m in kept_telemetry[-len(left) :]]
    assert box.counters["dropped_telemetry"] == dropped
    assert box.counters["dropped_messages"] == dropped
    assert box.counters["dropped_readings"] == dropped * 10
    assert box.counters["dropped_events"] == 0
    # counters survive a restart
    box.close()
    again = Outbox.open(tmp_path / "o.db", budget, synchronous="normal")
    assert again.counters["dropped_readings"] == dropped * 10


def test_protected_messages_are_kept_over_budget_and_counted(tmp_path: Path) -> None:
    s = Stamper()
    box = Outbox.open(tmp_path / "o.db", 2000)  # smaller than an empty database
    alarms = [smoke(s) for _ in range(30)]
    for alarm in alarms:
        box.put(alarm)
    assert box.depth == 30
    assert box.used_bytes() > 2000
    assert box.counters["over_budget"] > 0
    assert box.counters["dropped_messages"] == 0
    # new telemetry cannot displace them: it is dropped itself
    box.put(telemetry(s))
    assert box.depth == 30
    assert box.counters["dropped_telemetry"] == 1


def test_historical_flag_rewrites_only_the_envelope(tmp_path: Path) -> None:
    s = Stamper()
    box = Outbox.open(tmp_path / "o.db", 10**9)
    tricky = s.stamp(
        DeviceEvent, device="x-1", event="x.y", attrs={"historical": False, "note": "historical"}
    )
    box.put(tricky)
    (row,) = box.next_batch(1)
    live = json.loads(row.payload_for_send(False))
    replay = json.loads(row.payload_for_send(True))
    assert live["historical"] is False
    assert replay["historical"] is True
    assert replay["attrs"] == {"historical": False, "note": "historical"}
    assert replay["msg_id"] == tricky.msg_id


def test_a_message_that_fails_validation_uses_no_seq() -> None:
    s = Stamper()
    first = s.stamp(DeviceEvent, device="d-1", event="x.y")
    with pytest.raises(ValidationError):
        s.stamp(DeviceEvent, device="bad/id", event="x.y")
    second = s.stamp(DeviceEvent, device="d-1", event="x.z")
    assert (first.seq, second.seq) == (0, 1), "no gap the cloud would report as loss"

"""Every malformed-payload class lands in the dead-letter table with its reason; ingest goes on."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest import STORE_ERROR, Ingest
from cloud.registry import Registry
from cloud.storage.tables import DeadLetter, Reading, StoredEnvelope
from linli.services import Mosquitto
from protocols.codec import MAX_PAYLOAD_BYTES, encode, new_id
from protocols.errors import RejectReason
from protocols.messages import Command
from protocols.topics import PREFIX, Channel
from tests.cloud.ingest.ingest_support import (
    Gateway,
    Publisher,
    config,
    count,
    running,
    until,
)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["inprocess", "split"])
async def test_every_reject_class_is_dead_lettered_and_ingest_continues(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str, mode: str
) -> None:
    gw = Gateway(site)
    good = gw.telemetry()
    schema_bad = json.loads(encode(gw.telemetry()))
    schema_bad["seq"] = -1
    command = Command(
        cmd_id="c" * 16, name="door.open", issued_at=good.ts, expires_at=good.ts.replace(year=2030)
    )
    # Raw topic strings on purpose: these are malformed topics the contract must refuse.
    bad: dict[RejectReason, tuple[str, bytes]] = {
        RejectReason.BAD_TOPIC: (f"{PREFIX}/{site}/gw1/bogus", encode(good)),
        RejectReason.BAD_ID: (f"{PREFIX}/{site}/gw%1/telemetry", encode(good)),
        RejectReason.TOO_LARGE: (gw.topic(), b"{" + b" " * MAX_PAYLOAD_BYTES + b"}"),
        RejectReason.NOT_UTF8: (gw.topic(), b"\xff\xfe{}"),
        RejectReason.NOT_JSON: (gw.topic(), b"{not json"),
        RejectReason.SCHEMA: (gw.topic(), json.dumps(schema_bad).encode()),
        RejectReason.WRONG_DIRECTION: (gw.topic(Channel.CMD), encode(command)),
    }
    assert set(bad) == set(RejectReason), "a reject class has no test case"
    # all_channels: also read cmd and unknown channels, so misrouted traffic is dead-lettered.
    cfg = config(mosquitto, site, all_channels=True, mode=mode)
    ingest = Ingest(cfg, engine, Registry(engine))
    async with running(ingest):
        publisher.send(list(bad.values()))
        publisher.send([gw.frame(good)])
        await until(lambda: count(engine, DeadLetter.id) == len(bad))
        await until(lambda: count(engine, Reading.id) == 1)
    with Session(engine) as s:
        rows = {r.reason: r for r in s.scalars(select(DeadLetter))}
    assert set(rows) == {r.value for r in RejectReason}
    for reason, (topic, payload) in bad.items():
        row = rows[reason.value]
        assert row.topic == topic
        assert row.payload == payload  # kept byte for byte
        assert row.detail
    assert dict(ingest.stats.rejects) == {r.value: 1 for r in RejectReason}
    assert ingest.stats.acked == len(bad) + 1  # rejects are acknowledged once dead-lettered


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["inprocess", "split"])
async def test_a_message_the_database_refuses_is_isolated(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str, mode: str
) -> None:
    """The schema allows any seq ≥ 0; neither database stores one beyond 64 bits. That message
    is dead-lettered as store_error and the rest of its batch is stored."""
    gw = Gateway(site)
    huge = gw.telemetry().model_copy(update={"seq": 2**63, "msg_id": new_id()})
    good = [gw.telemetry() for _ in range(5)]
    ingest = Ingest(config(mosquitto, site, linger_s=0.5, mode=mode), engine, Registry(engine))
    async with running(ingest):
        publisher.send([gw.frame(good[0]), gw.frame(huge)] + [gw.frame(m) for m in good[1:]])
        await until(lambda: count(engine, StoredEnvelope.id) + count(engine, DeadLetter.id) == 6)
    assert count(engine, Reading.id) == 5
    assert count(engine, StoredEnvelope.id) == 5
    with Session(engine) as s:
        [row] = s.scalars(select(DeadLetter))
    assert (row.reason, row.payload) == (STORE_ERROR, encode(huge))
    assert ingest.stats.rejects == {STORE_ERROR: 1}

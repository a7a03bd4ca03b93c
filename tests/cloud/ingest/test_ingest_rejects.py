"""Every malformed-payload class lands in the dead-letter table with its reason; ingest goes on."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest import Ingest
from cloud.registry import Registry
from cloud.storage.tables import DeadLetter, Reading
from linli.services import Mosquitto
from protocols.codec import MAX_PAYLOAD_BYTES, encode
from protocols.errors import RejectReason
from protocols.messages import Command
from protocols.topics import PREFIX, Channel
from tests.cloud.ingest.ingest_support import Gateway, Publisher, config, count, running, until


@pytest.mark.anyio
async def test_every_reject_class_is_dead_lettered_and_ingest_continues(
    engine: Engine, mosquitto: Mosquitto, publisher: Publisher, site: str
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
    ingest = Ingest(config(mosquitto, site, all_channels=True), engine, Registry(engine))
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

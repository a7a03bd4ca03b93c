"""Consumers of stored batches: ``on_stored`` first, then those added by ``also_notify``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine

from cloud.ingest import Ingest, IngestConfig, StoredMessage
from cloud.registry import Registry
from protocols.codec import new_id
from protocols.messages import Reading, Telemetry
from protocols.topics import Channel, Topic


def batch() -> list[StoredMessage]:
    ts = datetime.now(UTC)
    reading = Reading(device="smoke1", metric="smoke", value=False, ts=ts)
    msg = Telemetry(msg_id=new_id(), boot_id=new_id(), seq=0, ts=ts, readings=(reading,))
    return [StoredMessage(Topic("s1", "gw1", Channel.TELEMETRY), msg, False, False, frozenset(), 1)]


@pytest.mark.anyio
async def test_every_consumer_sees_each_batch_in_order_and_one_failing_does_not_stop_the_rest(
    engine: Engine,
) -> None:
    calls: list[str] = []

    async def rules(b: Sequence[StoredMessage]) -> None:
        calls.append("rules")
        raise RuntimeError("a consumer's bug")

    async def gate(b: Sequence[StoredMessage]) -> None:
        calls.append(f"gate:{len(b)}")

    ingest = Ingest(IngestConfig(client_id="hooks"), engine, Registry(engine), on_stored=rules)
    remove = ingest.also_notify(gate)
    await ingest._notify(batch())
    assert calls == ["rules", "gate:1"] and ingest.stats.hook_errors == 1
    remove()
    await ingest._notify(batch())
    assert calls == ["rules", "gate:1", "rules"] and ingest.stats.hook_errors == 2
    await ingest._notify([])  # nothing stored: nobody is called
    assert len(calls) == 3

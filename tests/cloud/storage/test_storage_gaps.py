"""Sequence gaps stored as data, closed by replay; historical flag kept."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest.store import BatchWriter
from cloud.storage import gaps
from cloud.storage.tables import GatewaySession, Reading, StoredEnvelope
from tests.cloud.storage.storage_support import T0, Gateway


def test_gap_opens_then_closes_when_replay_fills_it(
    engine: Engine, writer: BatchWriter, site: str
) -> None:
    gw = Gateway(site)
    writer.write(gw.deliver(*(gw.telemetry(s) for s in (0, 1, 2, 6))))
    with Session(engine) as s:
        [gap] = gaps(s, site)
    assert (gap.first_seq, gap.last_seq, gap.missing, gap.open) == (3, 5, 3, True)

    writer.write(gw.deliver(gw.telemetry(4, historical=True), gw.telemetry(7)))
    with Session(engine) as s:
        [gap] = gaps(s, site)
    assert (gap.missing, gap.open) == (2, True)

    result = writer.write(gw.deliver(gw.telemetry(3, historical=True), gw.telemetry(5)))
    assert result.gaps_closed == 1
    with Session(engine) as s:
        assert gaps(s, site) == []
        [closed] = gaps(s, site, include_closed=True)
        session = s.scalar(select(GatewaySession).where(GatewaySession.site == site))
    assert (closed.first_seq, closed.last_seq, closed.missing) == (3, 5, 0)
    assert closed.closed_at is not None
    assert session is not None and (session.max_seq, session.messages) == (7, 8)
    assert session.last_seen == T0 + timedelta(seconds=7)  # the newest message's time


def test_gap_in_one_batch_and_per_boot(engine: Engine, writer: BatchWriter, site: str) -> None:
    gw = Gateway(site)
    writer.write(gw.deliver(gw.telemetry(0), gw.telemetry(3), gw.telemetry(1)))
    rebooted = Gateway(site, boot_id="boot-two-0001")
    # A new boot numbers from 0 again: no gap. Its first message at 2 means 0..1 are missing.
    writer.write(rebooted.deliver(rebooted.telemetry(2)))
    with Session(engine) as s:
        open_gaps = {(g.boot_id, g.first_seq, g.last_seq, g.missing) for g in gaps(s, site)}
    assert open_gaps == {(gw.boot_id, 1, 2, 1), ("boot-two-0001", 0, 1, 2)}


def test_other_gateways_do_not_interfere(engine: Engine, writer: BatchWriter, site: str) -> None:
    a, b = Gateway(site, "gw-a"), Gateway(site, "gw-b")
    writer.write(a.deliver(a.telemetry(0)) + b.deliver(b.telemetry(0), b.telemetry(1)))
    writer.write(a.deliver(a.telemetry(1)))
    with Session(engine) as s:
        assert gaps(s, site) == []


def test_historical_flag_is_stored(engine: Engine, writer: BatchWriter, site: str) -> None:
    gw = Gateway(site)
    live, replayed = gw.telemetry(0), gw.telemetry(1, historical=True)
    result = writer.write(gw.deliver(live, replayed))
    assert [m.message.historical for m in result.stored] == [False, True]  # type: ignore[union-attr]
    with Session(engine) as s:
        flags = {r.seq: r.historical for r in s.scalars(select(StoredEnvelope))}
        row_ids = {r.msg_id: r.id for r in s.scalars(select(StoredEnvelope))}
        readings = {r.message: r.historical for r in s.scalars(select(Reading))}
    assert flags == {0: False, 1: True}
    assert readings == {row_ids[live.msg_id]: False, row_ids[replayed.msg_id]: True}

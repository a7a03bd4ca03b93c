"""GateSync re-sends an unanswered sync command (same cmd_id) until the gateway acknowledges."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands.publisher import Publisher
from cloud.commands.service import apply_ack
from cloud.commands.tables import CommandRow
from cloud.faces.dbstore import DbGallery
from cloud.gate.sync import GateSync
from edge.gate.passes import COMMAND, PassesSync
from edge.testing import Subscriber, until
from linli.services import Mosquitto
from protocols.codec import decode, new_id
from protocols.messages import AckStatus, Command, CommandAck
from protocols.topics import Channel, topic_filter
from tests.cloud.gate.conftest import visitor_pass

pytestmark = pytest.mark.anyio


async def test_unacknowledged_passes_sync_is_resent_until_acked(
    mosquitto: Mosquitto, site: str, site_db: sessionmaker[Session]
) -> None:
    sessions = site_db
    engine = sessions.kw["bind"]
    with sessions() as db:
        db.add(visitor_pass(site, datetime.now(UTC)))
        db.commit()
    sub = Subscriber(mosquitto, [topic_filter(Channel.CMD, site)])
    publisher = Publisher("127.0.0.1", mosquitto.port, f"cloud-{site}")
    task = asyncio.create_task(publisher.run())
    sync = GateSync(sessions, publisher, DbGallery(engine), None, resend_s=0.0)
    try:

        def commands() -> list[Command]:
            with sub._lock:
                raw = list(sub.raw)
            decoded = [decode(t, payload, uplink=False).message for t, payload, _ in raw]
            return [m for m in decoded if isinstance(m, Command)]

        await asyncio.to_thread(sync.tick)
        await until(lambda: len(commands()) == 1, what="first passes.sync")
        first = commands()[0]
        assert first.name == COMMAND
        assert [p.code for p in PassesSync.from_params(first.params).passes] == ["code-123456"]
        await asyncio.to_thread(sync.tick)  # no answer yet: the same command again
        await until(lambda: len(commands()) == 2, what="re-sent passes.sync")
        assert commands()[1].cmd_id == first.cmd_id and sync.resent == 1
        with Session(engine) as db:
            ack = CommandAck(
                msg_id=new_id(),
                boot_id=new_id(),
                seq=1,
                ts=datetime.now(UTC),
                cmd_id=first.cmd_id,
                status=AckStatus.OK,
            )
            assert apply_ack(db, site, "gw1", ack) is not None
            db.commit()
        await asyncio.to_thread(sync.tick)
        await asyncio.to_thread(sync.tick)
        await asyncio.sleep(1.0)
        assert len(commands()) == 2 and sync.resent == 1 and sync.sent == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        sub.close()


async def test_a_failed_sync_is_issued_again_after_a_while(
    mosquitto: Mosquitto, site: str, site_db: sessionmaker[Session]
) -> None:
    """``failed`` (the gateway could not apply it) is retried with a new command after
    ``resend_s``, backing off; ``ok`` ends it."""
    sessions = site_db
    engine = sessions.kw["bind"]
    clock = [datetime.now(UTC)]
    with sessions() as db:
        db.add(visitor_pass(site, clock[0]))
        db.commit()
    publisher = Publisher("127.0.0.1", mosquitto.port, f"cloud-{site}")
    task = asyncio.create_task(publisher.run())
    sync = GateSync(
        sessions, publisher, DbGallery(engine), None, resend_s=60.0, clock=lambda: clock[0]
    )

    def answer(status: AckStatus) -> str:
        with Session(engine) as db:
            row = db.scalars(select(CommandRow).order_by(CommandRow.id.desc()).limit(1)).one()
            ack = CommandAck(
                msg_id=new_id(),
                boot_id=new_id(),
                seq=1,
                ts=clock[0],
                cmd_id=row.cmd_id,
                status=status,
                reason="could not fetch" if status is AckStatus.FAILED else None,
            )
            assert apply_ack(db, site, "gw1", ack) is not None
            db.commit()
            return row.cmd_id

    def issued() -> list[str]:
        with Session(engine) as db:
            return list(db.scalars(select(CommandRow.cmd_id).order_by(CommandRow.id)))

    try:
        sync.tick()
        first = answer(AckStatus.FAILED)
        sync.tick()
        assert issued() == [first]  # not before resend_s
        assert 0 < sync.next_wait() <= 60.0
        clock[0] += timedelta(seconds=61)
        sync.tick()  # due: forgotten, so the next round issues it again
        sync.tick()
        again = issued()
        assert len(again) == 2 and again[0] == first
        answer(AckStatus.FAILED)
        clock[0] += timedelta(seconds=61)
        sync.tick()
        sync.tick()
        assert len(issued()) == 2  # the second failure in a row waits twice as long
        clock[0] += timedelta(seconds=61)
        sync.tick()
        sync.tick()
        assert len(issued()) == 3
        answer(AckStatus.OK)
        clock[0] += timedelta(hours=2)
        sync.tick()
        sync.tick()
        assert len(issued()) == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

"""A visitor pass written by *another process* (as the faces CLI or a second cloud process
would) wakes the running cloud's GateSync through :mod:`cloud.signals` — on SQLite too — so
the gateway gets ``passes.sync`` within seconds, with the safety poll set to an hour."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands.publisher import Publisher
from cloud.db import create_schema, make_engine
from cloud.faces.dbstore import DbGallery
from cloud.gate.sync import GateSync
from cloud.registry.tables import Gateway, Site
from edge.gate.passes import COMMAND, PassesSync
from edge.testing import Subscriber, until
from linli.services import Mosquitto
from protocols.codec import decode
from protocols.messages import Command
from protocols.topics import Channel, topic_filter
from tests.cloud.signals.conftest import run_elsewhere

pytestmark = pytest.mark.anyio
NO_POLL_S = 3600.0

ISSUE_PASS = """
import sys
from datetime import UTC, datetime, timedelta
from sqlalchemy.orm import Session
from cloud.db import make_engine
from cloud.gate import changes
from dashboards.tables import VisitorPass

engine = make_engine(sys.argv[1])
now = datetime.now(UTC)
with Session(engine) as db:
    db.add(VisitorPass(code=sys.argv[3], site=sys.argv[2], visitor_name="v", doors=[],
                       valid_from=now, valid_until=now + timedelta(hours=1), max_uses=1, uses=0,
                       created_by="guard1", created_at=now, detail={}))
    changes.announce(db, sys.argv[2])  # as the dashboards' pass API does
    db.commit()
engine.dispose()
"""


@pytest.fixture
def gate_db(db_url: str, site: str) -> Iterator[Engine]:
    engine = make_engine(db_url)
    create_schema(engine)
    with Session(engine) as db:
        db.add(Site(id=site))
        db.flush()
        db.add(Gateway(site=site, id="gw1"))
        db.commit()
    yield engine
    engine.dispose()


def issue_elsewhere(engine: Engine, site: str, code: str) -> None:
    run_elsewhere(ISSUE_PASS, engine, site, code)


async def test_a_pass_issued_by_another_process_reaches_the_gateway(
    gate_db: Engine, mosquitto: Mosquitto, site: str
) -> None:
    sessions = sessionmaker(gate_db, expire_on_commit=False)
    sub = Subscriber(mosquitto, [topic_filter(Channel.CMD, site)])
    publisher = Publisher("127.0.0.1", mosquitto.port, f"cloud-{site}")
    # Neither the safety poll nor a re-send of the unanswered command can run a round.
    sync = GateSync(
        sessions, publisher, DbGallery(gate_db), None, poll_s=NO_POLL_S, resend_s=NO_POLL_S
    )
    tasks = [asyncio.create_task(publisher.run()), asyncio.create_task(sync.run())]

    def synced_codes() -> list[set[str | None]]:
        with sub._lock:
            raw = list(sub.raw)
        decoded = [decode(t, payload, uplink=False).message for t, payload, _ in raw]
        return [
            {p.code for p in PassesSync.from_params(m.params).passes}
            for m in decoded
            if isinstance(m, Command) and m.name == COMMAND
        ]

    try:
        await until(lambda: sync.rounds >= 1, what="first round")
        await asyncio.sleep(1.0)  # listening, and nothing to send yet
        assert synced_codes() == []
        rounds = sync.rounds
        await asyncio.to_thread(issue_elsewhere, gate_db, site, "code-elsewhere-1")
        await until(lambda: synced_codes() == [{"code-elsewhere-1"}], within=15, what="sync")
        assert sync.rounds > rounds
        await asyncio.to_thread(issue_elsewhere, gate_db, site, "code-elsewhere-2")
        await until(lambda: len(synced_codes()) == 2, within=15, what="second sync")
        assert synced_codes()[1] == {"code-elsewhere-1", "code-elsewhere-2"}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        sub.close()

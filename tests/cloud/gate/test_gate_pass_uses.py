"""Visitor pass uses flow back: a pass used at gateway A is counted by the cloud once, shown by
the API, and refused at gateway B after the sync — on a real broker, with no safety poll."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.gate.tables import VisitorPassUse
from cloud.gate.uses import record_uses
from cloud.ingest.service import Ingest
from edge.agent import EdgeAgent
from edge.gate.gate import Gate
from edge.gate.policy import Reason
from edge.testing import until
from linli.services import Mosquitto
from protocols.messages import AccessDecision, AccessEvent, Envelope
from tests.cloud.gate.conftest import LiveCloud, running_gate
from tests.cloud.gate.test_gate_passes_sync import issue, present

pytestmark = [pytest.mark.anyio, pytest.mark.faces]


def the_pass(cloud: LiveCloud, pass_id: int) -> dict[str, Any]:
    response = cloud.client.get("/api/visitor-passes", params={"active": False})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = [p for p in response.json() if p["id"] == pass_id]
    assert len(found) == 1
    return found[0]


def holds(gate: Gate, pass_id: str) -> bool:
    return pass_id in {p.pass_id for p in gate.policy.passes}


def recording(agent: EdgeAgent) -> list[Envelope]:
    """Every message the agent puts in its outbox, from now on."""
    emitted: list[Envelope] = []
    emit: Callable[..., None] = agent.emit

    def spy(*messages: Envelope) -> None:
        emitted.extend(messages)
        emit(*messages)

    agent.emit = spy  # type: ignore[method-assign]
    return emitted


async def test_pass_used_at_one_gateway_is_counted_once_and_refused_at_another(
    tmp_path: Path, mosquitto: Mosquitto, site: str, live_cloud: LiveCloud
) -> None:
    async with (
        running_gate(tmp_path, mosquitto, site, "gwa") as a,
        running_gate(tmp_path, mosquitto, site, "gwb") as b,
    ):
        gate_a, gate_b = a.gates[0].gate, b.gates[0].gate
        sent_by_a = recording(a)

        one = issue(live_cloud, site, 3600, uses=1)
        wire = f"vp{one['id']}"
        for gate in (gate_a, gate_b):
            await until(partial(holds, gate, wire), 30, "pass synced")
        assert the_pass(live_cloud, one["id"])["state"] == "active"

        granted = present(gate_a, one["qr_text"])
        assert granted.decision is AccessDecision.GRANTED and granted.attrs["pass_id"] == wire

        # The cloud records the use (ingest's hook wakes the sync; there is no poll here).
        await until(lambda: the_pass(live_cloud, one["id"])["uses"] == 1, 30, "use recorded")
        shown = the_pass(live_cloud, one["id"])
        assert (shown["remaining"], shown["state"]) == (0, "pass_used_up")
        uses = live_cloud.client.get(f"/api/visitor-passes/{one['id']}/uses").json()
        assert [(u["gateway"], u["door"], u["method"]) for u in uses] == [("gwa", "main", "qr")]
        check = live_cloud.client.post("/api/visitor-passes/check", json={"code": one["qr_text"]})
        assert check.status_code == 409 and check.json()["detail"]["reason"] == "pass_used_up"

        # Gateway B learns of the use and refuses the pass.
        ledger_b = gate_b.ledger
        assert ledger_b is not None
        await until(lambda: ledger_b.counts() == {wire: 1}, 30, "B knows the use")
        refused = present(gate_b, one["code"])
        assert refused.decision is AccessDecision.DENIED
        assert refused.reason == Reason.PASS_USED_UP.value

        # The same access event again (a redelivery from A's outbox) does not count twice.
        grants = [
            m for m in sent_by_a if isinstance(m, AccessEvent) and m.attrs.get("pass_id") == wire
        ]
        assert len(grants) == 1
        ingest = live_cloud.app.state.services.ingest
        assert isinstance(ingest, Ingest)
        before = ingest.stats.duplicates
        a.emit(grants[0])
        await until(lambda: ingest.stats.duplicates > before, 30, "redelivery seen by ingest")
        # A later use of another pass is recorded, so the redelivery has been processed too.
        two = issue(live_cloud, site, 3600, uses=2)
        await until(partial(holds, gate_a, f"vp{two['id']}"), 30, "second pass synced")
        assert present(gate_a, two["code"]).decision is AccessDecision.GRANTED
        await until(lambda: the_pass(live_cloud, two["id"])["uses"] == 1, 30, "second use")
        assert the_pass(live_cloud, one["id"])["uses"] == 1

    # Reading every stored event again records nothing new (the msg_id is unique).
    engine = make_engine(live_cloud.db_url)
    try:
        with Session(engine) as db:
            again = await asyncio.to_thread(record_uses, db, 0, datetime.now(UTC))
            db.commit()
            assert again.uses == 0
            rows = db.scalars(select(VisitorPassUse).order_by(VisitorPassUse.id)).all()
            assert [(r.pass_id, r.gateway) for r in rows] == [
                (one["id"], "gwa"),
                (two["id"], "gwa"),
            ]
    finally:
        engine.dispose()

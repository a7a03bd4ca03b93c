"""Visitor passes issued and revoked in the dashboards reach the edge's door policy."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from cloud.commands.tables import CommandRow
from edge.gate.gate import Gate
from edge.gate.passes import COMMAND
from edge.gate.policy import Credential, Reason
from edge.testing import until
from linli.services import Mosquitto
from protocols.messages import AccessDecision, AccessEvent
from tests.cloud.gate.conftest import LiveCloud, running_gate

pytestmark = [pytest.mark.anyio, pytest.mark.faces]


def issue(cloud: LiveCloud, site: str, seconds: float, uses: int = 1) -> dict[str, Any]:
    until_ = datetime.now(UTC) + timedelta(seconds=seconds)
    body = {
        "visitor_name": "Ms Wang",
        "site": site,
        "valid_until": until_.isoformat(),
        "max_uses": uses,
    }
    response = cloud.client.post("/api/visitor-passes", json=body)
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def codes(gate: Gate) -> set[str | None]:
    return {p.code for p in gate.policy.passes}


def present(gate: Gate, text: str) -> AccessEvent:
    events = gate.credential(Credential(kind="qr", value=text), datetime.now(UTC))
    assert len(events) == 1
    return events[0]


async def test_issued_pass_opens_revoked_and_expired_do_not(
    tmp_path: Path, mosquitto: Mosquitto, site: str, live_cloud: LiveCloud
) -> None:
    async with running_gate(tmp_path, mosquitto, site) as agent:
        gate = agent.gates[0].gate

        one_use = issue(live_cloud, site, 3600)
        await until(lambda: one_use["code"] in codes(gate), within=30, what="pass synced")
        granted = present(gate, one_use["qr_text"])  # the QR text, as a reader reads it
        assert granted.decision is AccessDecision.GRANTED
        assert granted.reason == Reason.VISITOR_PASS.value
        assert granted.attrs["pass_id"] == f"vp{one_use['id']}"
        again = present(gate, one_use["code"])
        assert again.decision is AccessDecision.DENIED
        assert again.reason == Reason.PASS_USED_UP.value

        revoked = issue(live_cloud, site, 3600, uses=5)
        await until(lambda: revoked["code"] in codes(gate), within=30, what="second pass synced")
        answer = live_cloud.client.post(f"/api/visitor-passes/{revoked['id']}/revoke")
        assert answer.status_code == 200 and answer.json()["revoked"] is True
        await until(lambda: revoked["code"] not in codes(gate), within=30, what="revoke synced")
        refused = present(gate, revoked["qr_text"])
        assert refused.decision is AccessDecision.DENIED
        assert refused.reason == Reason.PASS_REVOKED.value  # test_gate_pass_revoked.py: more

        short = issue(live_cloud, site, 4, uses=5)
        await until(lambda: short["code"] in codes(gate), within=30, what="short pass synced")
        expires = datetime.fromisoformat(short["valid_until"])
        await asyncio.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
        expired = present(gate, short["code"])
        assert expired.decision is AccessDecision.DENIED
        assert expired.reason == Reason.PASS_EXPIRED.value

        # Every passes.sync was acknowledged by the gateway (the cloud stops re-sending).
        engine = create_engine(live_cloud.db_url)
        try:

            def statuses() -> set[str]:
                with Session(engine) as db:
                    rows = db.scalars(select(CommandRow).where(CommandRow.name == COMMAND))
                    return {r.status for r in rows}

            await until(lambda: statuses() == {"ok"}, within=30, what="passes.sync acked")
        finally:
            engine.dispose()
    assert live_cloud.sync.sent >= 4

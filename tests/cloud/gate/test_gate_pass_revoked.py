"""A revoked visitor pass shown at the door is refused as ``pass_revoked`` (not as an unknown
code), and the event reaches the cloud saying so — on a real broker, with no safety poll."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edge.gate.gate import Gate
from edge.gate.policy import Reason
from edge.testing import until
from linli.services import Mosquitto
from protocols.messages import AccessDecision
from protocols.passes import code_digest
from tests.cloud.gate.conftest import LiveCloud, running_gate
from tests.cloud.gate.test_gate_passes_sync import codes, issue, present

pytestmark = [pytest.mark.anyio, pytest.mark.faces]


def knows_revoked(gate: Gate, code: str) -> bool:
    return code_digest(code) in gate.policy.revoked


def stored_events(cloud: LiveCloud, site: str, reason: str) -> list[dict[str, Any]]:
    response = cloud.client.get("/api/access-events", params={"site": site})
    assert response.status_code == 200, response.text
    return [e for e in response.json() if e["reason"] == reason]


async def test_revoked_pass_is_refused_as_revoked_and_the_cloud_is_told(
    tmp_path: Path, mosquitto: Mosquitto, site: str, live_cloud: LiveCloud
) -> None:
    async with running_gate(tmp_path, mosquitto, site) as agent:
        gate = agent.gates[0].gate

        kept = issue(live_cloud, site, 3600, uses=5)
        revoked = issue(live_cloud, site, 3600, uses=5)
        await until(lambda: revoked["code"] in codes(gate), within=30, what="passes synced")
        answer = live_cloud.client.post(f"/api/visitor-passes/{revoked['id']}/revoke")
        assert answer.status_code == 200 and answer.json()["revoked"] is True
        await until(lambda: knows_revoked(gate, revoked["code"]), within=30, what="revoke synced")
        assert revoked["code"] not in codes(gate) and kept["code"] in codes(gate)
        # The gateway holds a digest of the revoked code, never the code itself.
        assert revoked["code"] not in str(gate.policy.model_dump())

        refused = present(gate, revoked["qr_text"])  # the QR text, as a reader reads it
        assert refused.decision is AccessDecision.DENIED
        assert refused.reason == Reason.PASS_REVOKED.value
        assert refused.attrs["pass_id"] == f"vp{revoked['id']}"
        assert present(gate, "LINLI-PASS:never-issued").reason == Reason.UNKNOWN_CREDENTIAL.value
        assert present(gate, kept["code"]).decision is AccessDecision.GRANTED

        # The refusal reaches the cloud's access feed (what the gate terminal lists).
        await until(
            lambda: len(stored_events(live_cloud, site, "pass_revoked")) == 1,
            within=30,
            what="pass_revoked event stored",
        )
        (event,) = stored_events(live_cloud, site, "pass_revoked")
        assert (event["decision"], event["method"], event["door"]) == ("denied", "qr", "main")
        assert event["attrs"]["pass_id"] == f"vp{revoked['id']}"
        # A refusal is not a use.
        shown = live_cloud.client.get("/api/visitor-passes", params={"active": False}).json()
        assert {p["id"]: p["uses"] for p in shown} == {kept["id"]: 1, revoked["id"]: 0}

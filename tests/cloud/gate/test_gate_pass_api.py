"""The visitor pass API says why a pass no longer opens, with the door's reason names."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cloud.db import make_engine
from cloud.gate.uses import record_uses
from tests.cloud.gate.conftest import LiveCloud, access_row

pytestmark = pytest.mark.anyio


def issue(cloud: LiveCloud, site: str, **fields: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    body = {"visitor_name": "Mr Li", "site": site, "valid_until": now + timedelta(hours=1)}
    body |= fields
    json = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in body.items()}
    response = cloud.client.post("/api/visitor-passes", json=json)
    assert response.status_code == 201, response.text
    issued: dict[str, Any] = response.json()
    return issued


def check(cloud: LiveCloud, code: str, door: str | None = None) -> tuple[int, Any]:
    body = {"code": code} if door is None else {"code": code, "door": door}
    response = cloud.client.post("/api/visitor-passes/check", json=body)
    return response.status_code, response.json()


def refused(cloud: LiveCloud, code: str, door: str | None = None) -> str:
    status, body = check(cloud, code, door)
    assert status in (404, 409), body
    reason: str = body["detail"]["reason"]
    return reason


async def test_check_and_state_give_the_reason(live_cloud: LiveCloud, site: str) -> None:
    now = datetime.now(UTC)
    fine = issue(live_cloud, site, doors=["side"])
    assert (fine["state"], fine["remaining"]) == ("active", 1)
    status, body = check(live_cloud, fine["qr_text"], "side")
    assert status == 200 and body["id"] == fine["id"]
    assert refused(live_cloud, fine["code"], "main") == "pass_wrong_door"
    assert refused(live_cloud, "no-such-code") == "unknown_credential"

    later = issue(
        live_cloud, site, valid_from=now + timedelta(hours=1), valid_until=now + timedelta(hours=2)
    )
    assert later["state"] == "pass_not_yet_valid"
    assert refused(live_cloud, later["code"]) == "pass_not_yet_valid"

    revoked = live_cloud.client.post(f"/api/visitor-passes/{fine['id']}/revoke").json()
    assert revoked["state"] == "pass_revoked"
    assert refused(live_cloud, fine["code"], "side") == "pass_revoked"

    short = issue(live_cloud, site, valid_until=datetime.now(UTC) + timedelta(seconds=1.5))
    await asyncio.sleep(2.0)
    assert refused(live_cloud, short["code"]) == "pass_expired"


async def test_an_offline_overrun_is_shown(live_cloud: LiveCloud, site: str) -> None:
    """Two gateways cut off from the cloud each granted the last use: both uses are recorded
    (uses 2 of 1), the pass shows used up."""
    one = issue(live_cloud, site, max_uses=1)
    engine = make_engine(live_cloud.db_url)
    try:
        with Session(engine) as db:
            for gateway in ("gwa", "gwb"):
                db.add(access_row(site, f"vp{one['id']}", gateway=gateway))
            db.commit()
            # The running sync was not told (rows written behind ingest's back): record here.
            # Whoever records them first, each counts once.
            record_uses(db, 0, datetime.now(UTC))
            db.commit()
        shown = [
            p for p in live_cloud.client.get("/api/visitor-passes").json() if p["id"] == one["id"]
        ]
        assert [(p["uses"], p["remaining"], p["state"]) for p in shown] == [(2, 0, "pass_used_up")]
        assert refused(live_cloud, one["code"]) == "pass_used_up"
    finally:
        engine.dispose()

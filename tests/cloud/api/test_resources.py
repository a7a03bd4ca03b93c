"""Registry, devices, telemetry, access events and gateways through the real pipeline.

The role check on every route is the dashboards' role-matrix test (tests/dashboards)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud.api.routers.telemetry import bucket_size, downsample
from cloud.auth.deps import Role
from linli.services import Mosquitto
from protocols.codec import new_id
from protocols.messages import (
    AccessDecision,
    AccessEvent,
    AccessKind,
    AccessMethod,
    Reading,
    Telemetry,
)
from tests.cloud.api.conftest import Cloud, Gateway, demo_site


@pytest.fixture
def gateway(mosquitto: Mosquitto, site: str) -> Iterator[Gateway]:
    gw = Gateway(mosquitto.port, site)
    yield gw
    gw.close()


def test_downsampling_buckets_min_avg_max() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [(t0 + timedelta(seconds=s), float(s)) for s in range(0, 120, 10)]
    buckets = downsample(rows, t0, 60)
    assert [(b.count, b.min, b.avg, b.max) for b in buckets] == [
        (6, 0.0, 25.0, 50.0),
        (6, 60.0, 85.0, 110.0),
    ]
    assert bucket_size(86400, 300) == 300 and bucket_size(60, 300) == 1


def test_telemetry_devices_and_gateway_health_after_ingest(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    start = datetime.now(UTC) - timedelta(minutes=10)
    boot = new_id()
    for i in range(60):  # one reading every 10 s for 10 minutes
        ts = start + timedelta(seconds=10 * i)
        gateway.send(
            Telemetry(
                msg_id=new_id(), boot_id=boot, seq=i, ts=ts,
                readings=(Reading(device="heat-1", metric="temperature", value=20 + i % 6, ts=ts),),
            )
        )  # fmt: skip
    cloud.wait_for(
        lambda: cloud.services.ingest is not None and cloud.services.ingest.stats.readings >= 60
    )
    series = cloud.get(
        "/api/telemetry/series",
        Role.VIEWER,
        params={
            "site": site, "device": "heat-1", "metric": "temperature",
            "since": start.isoformat(), "until": (start + timedelta(minutes=10)).isoformat(),
            "points": 10,
        },
    )  # fmt: skip
    assert series["bucket_s"] == 60 and series["source"] == "raw"
    assert len(series["buckets"]) == 10
    assert all(b["count"] == 6 and b["min"] == 20.0 and b["max"] == 25.0 for b in series["buckets"])
    latest = cloud.get("/api/telemetry/latest", params={"site": site, "device": "heat-1"})
    assert [(x["metric"], x["value"]) for x in latest] == [("temperature", 20.0 + 59 % 6)]
    devices = cloud.get("/api/devices", params={"site": site, "kind": "door_lock"})
    assert sorted(d["id"] for d in devices) == ["door-1", "door-2", "door-g"]
    health = cloud.get(f"/api/gateways/{site}/gw1/health")
    assert health["devices"] == 7 and health["open_gaps"] == 0
    assert health["messages_this_boot"] == 60
    detail = cloud.get(f"/api/sites/{site}")
    assert {z["id"] for z in detail["zones"]} == {"b1-f1", "garage"}


def test_unknown_device_is_pending_until_a_manager_approves_it(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    now = datetime.now(UTC)
    gateway.send(
        Telemetry(
            msg_id=new_id(), boot_id=new_id(), seq=0, ts=now,
            readings=(Reading(device="smoke-new", metric="smoke", value=True, ts=now),),
        )
    )  # fmt: skip
    pending = cloud.wait_for(
        lambda: cloud.get("/api/registry/pending", params={"site": site})["devices"]
    )
    assert [d["id"] for d in pending] == ["smoke-new"]
    assert cloud.get("/api/alerts", params={"site": site}) == []  # no rules for pending data
    url = f"/api/registry/devices/{site}/smoke-new/approval"
    body = {"approval": "approved", "kind": "smoke"}
    assert cloud.post(url, Role.GUARD, json=body).status_code == 403
    approved = cloud.post(url, json=body)
    assert approved.status_code == 200 and approved.json()["approval"] == "approved"
    assert cloud.get("/api/registry/pending", params={"site": site})["devices"] == []


def test_access_events_are_listed_and_streamed_to_staff_only(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    event = AccessEvent(
        msg_id=new_id(), boot_id=new_id(), seq=0, ts=datetime.now(UTC), door="door-g",
        kind=AccessKind.DECISION, decision=AccessDecision.GRANTED, reason="allow_list",
        method=AccessMethod.FACE, person_id="p1", person_name="Li Lei",
    )  # fmt: skip
    with (
        cloud.client.websocket_connect("/api/stream", headers=cloud.auth(Role.GUARD)) as guard,
        cloud.client.websocket_connect("/api/stream", headers=cloud.auth(Role.VIEWER)) as viewer,
    ):
        assert "access" in guard.receive_json()["topics"]
        assert "access" not in viewer.receive_json()["topics"]
        gateway.send(event)
        live = guard.receive_json()
    assert live["type"] == "access" and live["event"]["msg_id"] == event.msg_id
    listed = cloud.wait_for(
        lambda: cloud.get("/api/access-events", Role.GUARD, params={"site": site})
    )
    assert [(e["door"], e["person_name"], e["decision"]) for e in listed] == [
        ("door-g", "Li Lei", "granted")
    ]
    r = cloud.client.get("/api/access-events", headers=cloud.auth(Role.VIEWER))
    assert r.status_code == 403

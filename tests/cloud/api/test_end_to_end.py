"""End to end through the real broker: gateway → mosquitto → ingest → rules → alerts → API.

Readings carry their own timestamps, so a minute of a 5 Hz sensor is sent in a second or two;
they still travel through mosquitto, ingest and the database like any other message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cloud.auth.deps import Role
from linli.services import Mosquitto
from protocols.codec import new_id
from protocols.messages import (
    AckStatus,
    Command,
    CommandAck,
    GatewayConfig,
    GatewayState,
    GatewayStatus,
    Reading,
    Telemetry,
)
from protocols.topics import Channel, topic_filter
from tests.cloud.api.conftest import Cloud, Gateway, Listener, demo_site

BOOT = new_id()


def telemetry(
    gw: Gateway, ts: datetime, *readings: tuple[str, str, float | bool], historical: bool = False
) -> Telemetry:
    return Telemetry(
        msg_id=new_id(),
        boot_id=BOOT,
        seq=gw.next_seq(),
        ts=ts,
        historical=historical,
        readings=tuple(Reading(device=d, metric=m, value=v, ts=ts) for d, m, v in readings),
    )


@pytest.fixture
def gateway(mosquitto: Mosquitto, site: str) -> Iterator[Gateway]:
    gw = Gateway(mosquitto.port, site)
    yield gw
    gw.close()


def alerts_of(cloud: Cloud, site: str, **params: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = cloud.get("/api/alerts", params={"site": site, **params})
    return result


def test_smoke_reading_becomes_an_alert_at_the_api_and_on_the_stream(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    with cloud.client.websocket_connect(
        "/api/stream?topics=alert", headers=cloud.auth(Role.VIEWER)
    ) as ws:
        assert ws.receive_json()["type"] == "hello"
        gateway.send(telemetry(gateway, datetime.now(UTC), ("smoke-1", "smoke", True)))
        found = cloud.wait_for(lambda: alerts_of(cloud, site, rule_id="smoke-alarm"))
        event = ws.receive_json()
    assert len(found) == 1
    alert = found[0]
    assert (alert["subject"], alert["severity"], alert["status"]) == ("smoke-1", "critical", "open")
    assert alert["gateway"] == "gw1" and alert["zone"] == "b1-f1"
    assert alert["evidence"][0]["device"] == "smoke-1" and alert["evidence"][0]["role"] == "trigger"
    gateway.send(telemetry(gateway, datetime.now(UTC), ("smoke-1", "smoke", False)))
    evidence = cloud.wait_for(
        lambda: len(ev := cloud.get(f"/api/alerts/{alert['id']}/evidence")["around"]) == 2 and ev
    )
    assert [r["value"] for r in evidence] == [1.0, 0.0]  # the trigger and the reading after it
    assert event["type"] == "alert" and event["alert"]["id"] == alert["id"]


def test_flapping_sensor_at_5hz_for_60s_raises_at_most_one_alert(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    start = datetime.now(UTC) - timedelta(seconds=60)
    n = 5 * 60
    for i in range(n):  # smoke flips every reading, heat swings across both thresholds
        ts = start + timedelta(seconds=i / 5)
        gateway.send(
            telemetry(
                gateway,
                ts,
                ("smoke-g", "smoke", i % 2 == 0),
                ("heat-1", "temperature", 62.0 if i % 2 == 0 else 40.0),
            )
        )
    stored = cloud.wait_for(
        lambda: cloud.services.ingest is not None and cloud.services.ingest.stats.stored >= n,
        timeout=60,
    )
    assert stored
    cloud.wait_for(
        lambda: (
            cloud.services.runner is not None
            and cloud.services.runner.counts["observations"] >= 2 * n
        ),
        timeout=30,
    )
    smoke = alerts_of(cloud, site, rule_id="smoke-alarm")
    heat = alerts_of(cloud, site, rule_id="heat-high")
    assert len(smoke) == 1 and len(heat) == 1
    assert smoke[0]["subject"] == "smoke-g" and heat[0]["subject"] == "heat-1"
    everything = alerts_of(cloud, site)
    assert {a["rule_id"] for a in everything} <= {"smoke-alarm", "heat-high", "confirmed-fire"}
    # confirmed fire needs smoke and heat in ONE zone: smoke-g is in the garage, heat-1 is not
    assert not [a for a in everything if a["rule_id"] == "confirmed-fire"]
    # and people were told once per alert, not once per flap
    bell = cloud.wait_for(
        lambda: len(cloud.get("/api/notifications")) >= 2 and cloud.get("/api/notifications")
    )
    assert sorted(n["alert_id"] for n in bell) == sorted([smoke[0]["id"], heat[0]["id"]])


def test_confirmed_fire_fires_once_and_releases_doors_and_sirens_of_the_zone(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str, mosquitto: Mosquitto
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    listener = Listener(mosquitto.port, topic_filter(Channel.CMD, site))
    try:
        now = datetime.now(UTC)
        gateway.send(telemetry(gateway, now - timedelta(seconds=30), ("smoke-1", "smoke", True)))
        for i in range(5):  # heat rises and stays high; smoke repeats
            ts = now - timedelta(seconds=20 - i)
            gateway.send(
                telemetry(
                    gateway, ts, ("heat-1", "temperature", 55.0 + i), ("smoke-1", "smoke", True)
                )
            )
        fire = cloud.wait_for(lambda: alerts_of(cloud, site, rule_id="confirmed-fire"))
        expected = {("door.open", "door-1"), ("door.open", "door-2"), ("siren.on", "siren-1")}
        cloud.wait_for(
            lambda: (
                {(c.name, c.target) for c in listener.received() if isinstance(c, Command)}
                >= expected
            )
        )
        commands = [c for c in listener.received() if isinstance(c, Command)]
    finally:
        listener.close()
    assert len(fire) == 1
    assert (fire[0]["subject"], fire[0]["severity"]) == ("b1-f1", "critical")
    assert sorted((c.name, c.target) for c in commands) == sorted(expected)  # once, zone only
    assert all(c.expires_at > c.issued_at for c in commands)
    recorded = cloud.get("/api/commands", params={"alert_id": fire[0]["id"]})
    assert sorted((c["name"], c["target"]) for c in recorded) == sorted(expected)
    assert {c["status"] for c in recorded} == {"sent"}
    # the gateway answers one command: the ack is matched from the stored CommandAck
    done = commands[0]
    gateway.send(
        CommandAck(
            msg_id=new_id(), boot_id=BOOT, seq=gateway.next_seq(), ts=datetime.now(UTC),
            cmd_id=done.cmd_id, status=AckStatus.OK, result={"released": True},
        )
    )  # fmt: skip
    answered = cloud.wait_for(lambda: cloud.get(f"/api/commands/{done.cmd_id}")["status"] == "ok")
    assert answered


def test_historical_and_stale_readings_never_raise_a_new_alert(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str
) -> None:
    cloud = make_cloud(mqtt=True, stale_after_s=600.0)
    cloud.import_site(demo_site(site))
    now = datetime.now(UTC)
    # Replayed and older than stale_after_s: history. (A replay younger than that is treated
    # as live: see tests/cloud/rules/test_rules_runner.py.)
    gateway.send(
        telemetry(gateway, now - timedelta(minutes=20), ("smoke-1", "smoke", True), historical=True)
    )
    gateway.send(telemetry(gateway, now - timedelta(hours=2), ("smoke-g", "smoke", True)))
    # a fresh, live reading afterwards proves the pipeline ran past the two above
    gateway.send(telemetry(gateway, now, ("heat-1", "temperature", 70.0)))
    cloud.wait_for(lambda: alerts_of(cloud, site, rule_id="heat-high"))
    assert alerts_of(cloud, site, rule_id="smoke-alarm") == []
    runner = cloud.services.runner
    assert runner is not None and runner.counts["observations"] >= 3


def test_manual_door_open_needs_a_reason_is_audited_and_published(
    make_cloud: Callable[..., Cloud], site: str, mosquitto: Mosquitto
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    listener = Listener(mosquitto.port, topic_filter(Channel.CMD, site))
    try:
        body = {"site": site, "target": "door-g", "name": "door.open"}
        assert cloud.post("/api/commands", Role.GUARD, json=body).status_code == 422
        assert (
            cloud.post(
                "/api/commands", Role.VIEWER, json={**body, "reason": "delivery"}
            ).status_code
            == 403
        )
        r = cloud.post("/api/commands", Role.GUARD, json={**body, "reason": "courier delivery"})
        assert r.status_code == 202, r.text
        cmd_id = r.json()["cmd_id"]
        got = cloud.wait_for(lambda: [c for c in listener.received() if isinstance(c, Command)])
    finally:
        listener.close()
    assert [(c.cmd_id, c.name, c.target, c.issued_by) for c in got] == [
        (cmd_id, "door.open", "door-g", "guard1")
    ]
    from cloud.auth import audit

    with cloud.services.sessions() as db:
        entries = audit.entries(db, action="door.open")
    assert [(e.actor, e.target, e.detail["reason"]) for e in entries] == [
        ("guard1", f"{site}/door-g", "courier delivery")
    ]


def test_gateway_birth_gets_its_edge_rules_retained_on_config(
    make_cloud: Callable[..., Cloud], gateway: Gateway, site: str, mosquitto: Mosquitto
) -> None:
    cloud = make_cloud(mqtt=True)
    cloud.import_site(demo_site(site))
    stranger = Gateway(mosquitto.port, site, "gw-unknown")
    try:  # an unknown gateway's birth comes first: it is held for approval, it gets no rules
        stranger.send(GatewayState(status=GatewayStatus.ONLINE, boot_id=BOOT, ts=datetime.now(UTC)))
    finally:
        stranger.close()
    gateway.send(GatewayState(status=GatewayStatus.ONLINE, boot_id=BOOT, ts=datetime.now(UTC)))
    listener = Listener(mosquitto.port, topic_filter(Channel.CONFIG, site))
    try:
        configs = cloud.wait_for(
            lambda: [m for m in listener.received() if isinstance(m, GatewayConfig)]
        )
        gateways = [d.topic.gateway for d in listener.messages]
    finally:
        listener.close()
    assert gateways == ["gw1"]
    ids = {r["id"] for r in configs[0].rules}
    assert "edge-smoke-local" in ids and "confirmed-fire" not in ids
    assert configs[0].version >= 1


def test_a_cloud_process_for_some_sites_reads_only_their_topics(
    make_cloud: Callable[..., Cloud], mosquitto: Mosquitto, site: str
) -> None:
    other = f"{site}x"
    cloud = make_cloud(mqtt=True, ingest_sites=[site])
    cloud.import_site(demo_site(site))
    cloud.import_site(demo_site(other))
    theirs, ours = Gateway(mosquitto.port, other), Gateway(mosquitto.port, site)
    try:
        now = datetime.now(UTC)
        theirs.send(telemetry(theirs, now, ("smoke-1", "smoke", True)))
        ours.send(telemetry(ours, now, ("smoke-1", "smoke", True)))
        cloud.wait_for(lambda: alerts_of(cloud, site))
    finally:
        theirs.close()
        ours.close()
    assert alerts_of(cloud, other) == []
    ingest = cloud.services.ingest
    assert ingest is not None and ingest.stats.stored == 1

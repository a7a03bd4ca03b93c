"""Escalation and notification channels against real local servers: an HTTP server for the
webhook and the whistle, aiosmtpd for e-mail. The alert comes through the real broker."""

from __future__ import annotations

import email
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from cloud.auth.deps import Role
from linli.services import Mosquitto
from linli.services.base import free_port
from protocols.codec import new_id
from protocols.messages import Reading, Telemetry
from tests.cloud.api.conftest import Cloud, Gateway, demo_site


class Hooks:
    """A local HTTP server that records every JSON POST by path."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hooks.posts.append((self.path, json.loads(self.rfile.read(length))))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path: str) -> list[dict[str, Any]]:
        return [body for p, body in self.posts if p == path]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    h = Hooks()
    yield h
    h.server.shutdown()
    h.server.server_close()


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def smoke(gw: Gateway) -> Telemetry:
    now = datetime.now(UTC)
    return Telemetry(
        msg_id=new_id(),
        boot_id="boot-escalation",
        seq=gw.next_seq(),
        ts=now,
        readings=(Reading(device="smoke-1", metric="smoke", value=True, ts=now),),
    )


def test_unacknowledged_critical_alert_escalates_whistles_and_mails(
    make_cloud: Callable[..., Cloud],
    mosquitto: Mosquitto,
    site: str,
    hooks: Hooks,
    smtp: tuple[Mailbox, int],
) -> None:
    box, smtp_port = smtp
    cloud = make_cloud(
        mqtt=True,
        channels={
            "app": {"type": "inapp"},
            "duty": {"type": "email", "to": ["duty@example.org"], "port": smtp_port},
            "ops": {"type": "webhook", "url": f"{hooks.url}/ops"},
        },
        escalation={
            "on_raise": {"critical": ["app", "duty"]},
            "tiers": [
                {"after_s": 0.5, "channels": ["ops"], "label": "property manager"},
                {"after_s": 0.5, "channels": ["ops"], "label": "director"},
            ],
            "whistle_url": f"{hooks.url}/whistle",
        },
    )
    cloud.import_site(demo_site(site))
    gw = Gateway(mosquitto.port, site)
    try:
        gw.send(smoke(gw))
        alerts = cloud.wait_for(lambda: cloud.get("/api/alerts", params={"site": site}))
    finally:
        gw.close()
    alert_id = alerts[0]["id"]
    whistle = cloud.wait_for(lambda: hooks.to("/whistle"))
    assert whistle[0]["alert_id"] == alert_id and whistle[0]["severity"] == "critical"
    ops = cloud.wait_for(lambda: len(hooks.to("/ops")) >= 2 and hooks.to("/ops"))
    assert [(b["kind"], b["tier"]) for b in ops[:2]] == [("escalated", 1), ("escalated", 2)]
    mail = cloud.wait_for(lambda: box.messages)
    assert mail[0]["To"] == "duty@example.org"
    assert "Smoke alarm" in mail[0]["Subject"] and "CRITICAL" in mail[0]["Subject"]
    body = mail[0].get_payload(decode=True)
    assert isinstance(body, bytes) and f"#{alert_id}" in body.decode()

    def timeline() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = cloud.get(f"/api/alerts/{alert_id}/timeline")
        return events

    def delivered() -> set[str]:
        return {e["detail"]["channel"] for e in timeline() if e["kind"] == "notified"}

    assert cloud.wait_for(lambda: {"app", "duty", "ops", "whistle"} <= delivered())
    escalations = [e for e in timeline() if e["kind"] == "escalated"]
    assert [e["detail"]["whistle"] for e in escalations] == [True, False]  # whistle once
    assert len(hooks.to("/whistle")) == 1
    # acknowledging stops the climb; the in-app notification reached the manager's bell
    assert cloud.post(f"/api/alerts/{alert_id}/ack").status_code == 200
    after = cloud.get(f"/api/alerts/{alert_id}")["alert"]
    assert after["next_escalation_at"] is None and after["escalation_tier"] == 2
    bell = cloud.get("/api/notifications")
    assert [n["alert_id"] for n in bell] == [alert_id] and bell[0]["reason"] == "created"
    assert cloud.get("/api/notifications", Role.RESIDENT) == []


def test_failed_webhook_is_retried_then_recorded_as_failed(
    make_cloud: Callable[..., Cloud], mosquitto: Mosquitto, site: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/nobody"
    cloud = make_cloud(
        mqtt=True,
        channels={"app": {"type": "inapp"}, "ops": {"type": "webhook", "url": dead}},
        escalation={"on_raise": {"critical": ["ops"]}, "tiers": []},
    )
    cloud.services.notifier.backoff_s = 0.01
    cloud.import_site(demo_site(site))
    gw = Gateway(mosquitto.port, site)
    try:
        gw.send(smoke(gw))
        alerts = cloud.wait_for(lambda: cloud.get("/api/alerts", params={"site": site}))
    finally:
        gw.close()
    failed = cloud.wait_for(
        lambda: [
            e
            for e in cloud.get(f"/api/alerts/{alerts[0]['id']}/timeline")
            if e["kind"] == "notify_failed"
        ]
    )
    assert failed[0]["detail"]["channel"] == "ops" and failed[0]["detail"]["attempts"] == 3
    assert "ConnectError" in failed[0]["detail"]["error"]


def test_a_rule_naming_the_whistle_calls_it_once_at_raise(
    make_cloud: Callable[..., Cloud], mosquitto: Mosquitto, site: str, hooks: Hooks
) -> None:
    cloud = make_cloud(
        mqtt=True,
        escalation={
            "tiers": [{"after_s": 0.3, "channels": ["app"]}],
            "whistle_url": f"{hooks.url}/whistle",
        },
    )
    cloud.import_site(demo_site(site))
    gw = Gateway(mosquitto.port, site)
    try:
        now = datetime.now(UTC)
        for i, (device, metric, value) in enumerate(
            [("smoke-1", "smoke", True), ("heat-1", "temperature", 65.0)]
        ):
            gw.send(
                Telemetry(
                    msg_id=new_id(), boot_id="boot-whistle", seq=i, ts=now,
                    readings=(Reading(device=device, metric=metric, value=value, ts=now),),
                )
            )  # fmt: skip
        fire = cloud.wait_for(
            lambda: cloud.get("/api/alerts", params={"site": site, "rule_id": "confirmed-fire"})
        )
        cloud.wait_for(lambda: [c for c in hooks.to("/whistle") if c["alert_id"] == fire[0]["id"]])
        # escalation of the unacknowledged fire (tier 1 after 0.3 s) must not whistle again
        cloud.wait_for(
            lambda: cloud.get(f"/api/alerts/{fire[0]['id']}")["alert"]["escalation_tier"] >= 1
        )
    finally:
        gw.close()
    for_fire = [
        (c["kind"], c["rule_id"]) for c in hooks.to("/whistle") if c["alert_id"] == fire[0]["id"]
    ]
    assert for_fire == [("rule", "confirmed-fire")]  # the smoke alarm may whistle for itself
    assert cloud.get(f"/api/alerts/{fire[0]['id']}")["alert"]["whistled_at"] is not None

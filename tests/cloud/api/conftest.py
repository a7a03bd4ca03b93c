"""The real cloud app (``create_app``) on a fresh database, a user and token for every role.

``make_cloud(**settings)`` starts the app's lifespan inside a TestClient; with ``mqtt=True`` it
connects to the session's real mosquitto (ingest, rules runner, publisher all running).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as paho
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session

from cloud.api import create_app
from cloud.api.services import Services
from cloud.auth import service as accounts
from cloud.auth.deps import Role
from cloud.registry.sitefile import SiteFile
from cloud.settings import Settings
from linli.services import Mosquitto
from protocols.codec import encode
from protocols.messages import Model
from protocols.topics import topic

PASSWORD = "correct horse battery staple"


@dataclass
class Cloud:
    app: FastAPI
    client: TestClient
    tokens: dict[Role, str]

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, url: str, role: Role = Role.MANAGER, **kw: Any) -> Any:
        response = self.client.get(url, headers=self.auth(role), **kw)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, url: str, role: Role = Role.MANAGER, **kw: Any) -> Any:
        return self.client.post(url, headers=self.auth(role), **kw)

    def import_site(self, sitefile: SiteFile) -> None:
        registry = self.services.registry
        with self.services.sessions.begin() as db:
            registry.import_site(db, sitefile)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout}s")


def _users(app: FastAPI) -> dict[Role, str]:
    tokens = {}
    with Session(app.state.engine) as db:
        for role in Role:
            user = accounts.create_user(db, f"{role.value}1", PASSWORD, role)
            tokens[role], _ = accounts.issue_token(db, user, 3600)
        db.commit()
    return tokens


@pytest.fixture
def make_cloud(
    db_url: str, site: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Cloud]]:
    with ExitStack() as stack:

        def make(*, mqtt: bool = False, **overrides: Any) -> Cloud:
            values: dict[str, Any] = {
                "db_url": db_url,
                "mqtt_enabled": mqtt,
                "tick_s": 0.2,
                "static_dashboards": False,
                "stale_after_s": 3600.0,
            }
            if mqtt:
                broker: Mosquitto = request.getfixturevalue("mosquitto")
                values |= {
                    "mqtt_port": broker.port,
                    "mqtt_client_id": f"cloud-{site}",
                }
            values |= overrides
            app = create_app(Settings(**values))
            client = stack.enter_context(TestClient(app))
            cloud = Cloud(app, client, _users(app))
            if mqtt:
                cloud.wait_for(lambda: client.get("/ready").status_code == 200)
            return cloud

        yield make


def demo_site(site: str) -> SiteFile:
    """One building, one floor zone with smoke, heat, siren, door locks; a second zone."""
    return SiteFile.model_validate(
        {
            "site": site,
            "buildings": [{"id": "b1", "floors": [{"id": "b1-f1", "level": 1}]}],
            "zones": [
                {"id": "b1-f1", "building": "b1", "floor": "b1-f1"},
                {"id": "garage"},
            ],
            "gateways": [
                {
                    "id": "gw1",
                    "building": "b1",
                    "devices": [
                        {"id": "smoke-1", "kind": "smoke", "zone": "b1-f1", "building": "b1"},
                        {"id": "heat-1", "kind": "heat", "zone": "b1-f1", "building": "b1"},
                        {"id": "siren-1", "kind": "siren", "zone": "b1-f1", "building": "b1"},
                        {"id": "door-1", "kind": "door_lock", "zone": "b1-f1", "building": "b1"},
                        {"id": "door-2", "kind": "door_lock", "zone": "b1-f1", "building": "b1"},
                        {"id": "door-g", "kind": "door_lock", "zone": "garage"},
                        {"id": "smoke-g", "kind": "smoke", "zone": "garage"},
                    ],
                }
            ],
        }
    )


class Gateway:
    """A test publisher speaking the wire contract through the real broker (paho, QoS1)."""

    def __init__(self, port: int, site: str, gateway: str = "gw1") -> None:
        self.site = site
        self.gateway = gateway
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"pub-{site}-{gateway}")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq = 0

    def send(self, message: Model) -> None:
        from protocols.codec import channel_of

        info = self.client.publish(
            topic(self.site, self.gateway, channel_of(message)), encode(message), qos=1
        )
        info.wait_for_publish(10)

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Listener:
    """A test subscriber (paho) on downlink topics; collects decoded messages."""

    def __init__(self, port: int, filter_: str) -> None:
        import threading

        from protocols.codec import Decoded, decode

        self.messages: list[Decoded] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()

        def on_message(client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
            with self._lock:
                self.messages.append(decode(msg.topic, bytes(msg.payload), uplink=False))

        def on_subscribe(*args: object) -> None:
            self._subscribed.set()

        def on_connect(client: paho.Client, *args: object) -> None:
            client.subscribe(filter_, qos=1)

        self.client = paho.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = on_message
        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "test subscriber did not subscribe"

    def received(self) -> list[Any]:
        with self._lock:
            return [d.message for d in self.messages]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

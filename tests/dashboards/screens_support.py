"""Helpers of the screens' tests: the running cloud app, a live server, Chromium steps."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from playwright.sync_api import Browser, BrowserContext, Page
from sqlalchemy.orm import Session

from cloud.auth import service
from cloud.auth.deps import Role
from cloud.registry.sitefile import SiteFile

PASSWORD = "correct horse battery"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"


class Cloud:
    """The real cloud app (``cloud.api.create_app``) with its lifespan running."""

    def __init__(self, app: FastAPI, client: httpx.Client) -> None:
        self.app = app
        self.client = client
        self.tokens: dict[Role, str] = {}
        with Session(app.state.engine) as db:
            for role in Role:
                user = service.create_user(db, f"{role.value}1", PASSWORD, role)
                self.tokens[role], _ = service.issue_token(db, user, 3600)
            db.commit()

    @property
    def testclient(self) -> TestClient:
        """The in-process client (WebSocket support); only for a cloud run by TestClient."""
        assert isinstance(self.client, TestClient)
        return self.client

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def wait_for(self, predicate: Callable[[], object], timeout: float = 30.0) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout}s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """uvicorn serving an app in a thread on a free loopback port."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Pages:
    """Browser pages of one test, each in a fresh context (own cookies): JavaScript errors are
    collected and reported when the test ends, and every context is closed."""

    def __init__(self, browser: Browser, timeout_ms: float = 30_000) -> None:
        self.browser = browser
        self.timeout_ms = timeout_ms
        self.contexts: list[BrowserContext] = []
        self.errors: list[str] = []

    def new(self, width: int = 1400, height: int = 900, **options: Any) -> Page:
        context = self.browser.new_context(viewport={"width": width, "height": height}, **options)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(self.timeout_ms)
        page.on("pageerror", lambda exc: self.errors.append(f"{page.url}: {exc}"))
        return page

    def __enter__(self) -> Pages:
        return self

    def close(self) -> None:
        """Close every page now (e.g. before the server they poll stops); check their errors."""
        for context in self.contexts:
            context.close()
        self.contexts.clear()
        assert not self.errors, f"JavaScript errors on the page: {self.errors}"

    def __exit__(self, *exc: object) -> None:
        self.close()


def to_docs(shot: Path) -> None:
    """Refresh docs/screenshots/ only when asked (LINLI_UPDATE_DOCS_SCREENSHOTS=1): a test run
    must not leave the work tree modified."""
    if os.environ.get("LINLI_UPDATE_DOCS_SCREENSHOTS") == "1":
        docs = REPO / "docs" / "screenshots"
        docs.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, docs / shot.name)


def sign_in(page: Page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.wait_for_selector("body[data-ready='1']")  # the form's handler is attached
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(lambda url: "/login" not in url)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    return path


class FakeGatewayLink:
    """Stands in for a gateway's uplink: publishes wire messages through the real broker
    (paho, QoS1), and listens on the gateway's command topic."""

    def __init__(self, port: int, site: str, gateway: str = "gw1") -> None:
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        from protocols.codec import decode, new_id
        from protocols.topics import Channel, topic

        self.site, self.gateway = site, gateway
        self.boot_id = new_id()
        self.seq = 0
        self.commands: list[object] = []
        self._topic = topic
        cmd_topic = topic(site, gateway, Channel.CMD)
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"gw-{site}")
        subscribed = threading.Event()

        def on_connect(client: paho.Client, *_args: object) -> None:
            client.subscribe(cmd_topic, qos=1)

        def on_subscribe(*_args: object) -> None:
            subscribed.set()

        def on_message(_c: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
            self.commands.append(decode(msg.topic, bytes(msg.payload)).message)

        self.client.on_connect = on_connect
        self.client.on_subscribe = on_subscribe
        self.client.on_message = on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(20):
            raise RuntimeError("test gateway could not subscribe")

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, message: Any) -> None:
        from protocols.codec import channel_of, encode

        info = self.client.publish(
            self._topic(self.site, self.gateway, channel_of(message)), encode(message), qos=1
        )
        info.wait_for_publish(10)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def demo_site(site: str) -> SiteFile:
    devices = [
        {"id": "smoke-101", "kind": "smoke", "building": "b1", "floor": "b1-f1", "zone": "b1-f1"},
        {"id": "smoke-201", "kind": "smoke", "building": "b1", "floor": "b1-f2", "zone": "b1-f2"},
        {"id": "heat-101", "kind": "heat", "building": "b1", "floor": "b1-f1", "zone": "b1-f1"},
        {"id": "leak-g1", "kind": "water_leak", "building": "b2", "floor": "b2-b1", "zone": "gar"},
        {"id": "gate-1", "kind": "door_lock", "zone": "gate"},
        {"id": "gate-2", "kind": "door_lock", "zone": "gate"},
    ]
    return SiteFile.model_validate(
        {
            "site": site,
            "name": "Demo",
            "buildings": [
                {"id": "b1", "floors": [{"id": "b1-f1", "level": 1}, {"id": "b1-f2", "level": 2}]},
                {"id": "b2", "floors": [{"id": "b2-b1", "level": -1}]},
            ],
            "zones": [
                {"id": "b1-f1", "building": "b1", "floor": "b1-f1"},
                {"id": "b1-f2", "building": "b1", "floor": "b1-f2"},
                {"id": "gar", "building": "b2", "floor": "b2-b1"},
                {"id": "gate"},
            ],
            "gateways": [{"id": "gw1", "building": "b1", "devices": devices}],
        }
    )

"""The developer console's API: run simulator scenarios and watch the MQTT traffic.

A tap (one paho client in a thread) subscribes to every uplink and downlink topic of the broker
the cloud uses and keeps the last messages in a bounded ring; the page polls it. The tap starts
on first use and stops itself after ``idle_s`` without a poll. Scenarios run as subprocesses
(``linli sim run FILE --mqtt HOST:PORT``) and are stopped on request or when the console is
closed. Admins only.
"""

from __future__ import annotations

import atexit
import json
import logging
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict

from cloud.auth import audit
from cloud.auth.deps import DbSession, Principal, Role, require_roles
from protocols.codec import MAX_PAYLOAD_BYTES
from protocols.errors import ProtocolError
from protocols.topics import parse_topic, topic_filter

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "simulators" / "scenarios"
Developer = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
router = APIRouter(tags=["developer console"], dependencies=[Depends(require_roles(Role.ADMIN))])


class TapMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    ts: datetime
    topic: str
    site: str | None
    gateway: str | None
    channel: str | None
    retained: bool
    payload: str


class ScenarioOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    running: bool
    returncode: int | None
    output_tail: str


class MessagesOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    connected: bool
    last_seq: int
    messages: list[TapMessage]


class MqttTap:
    """Last ``capacity`` messages on ``linli/v1/#`` of one broker, kept by a paho thread."""

    def __init__(self, host: str, port: int, capacity: int = 500, idle_s: float = 120.0) -> None:
        self.host, self.port, self.idle_s = host, port, idle_s
        self._ring: deque[TapMessage] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._seq = 0
        self._client: Any = None
        self._last_poll = time.monotonic()
        self.connected = False
        self._stop = threading.Event()

    @property
    def running(self) -> bool:
        return self._client is not None

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        payload = bytes(msg.payload[:MAX_PAYLOAD_BYTES])
        try:
            text = payload.decode("utf-8")
            text = json.dumps(json.loads(text), ensure_ascii=False)[:2000]
        except (UnicodeDecodeError, json.JSONDecodeError):
            text = f"<{len(msg.payload)} bytes, not JSON>"
        site: str | None = None
        gateway: str | None = None
        channel: str | None = None
        try:
            parsed = parse_topic(msg.topic)
            site, gateway, channel = parsed.site, parsed.gateway, parsed.channel.value
        except ProtocolError:
            pass  # shown with its raw topic; the tap shows everything, valid or not
        with self._lock:
            self._seq += 1
            self._ring.append(
                TapMessage(
                    seq=self._seq,
                    ts=datetime.now(UTC),
                    topic=msg.topic,
                    site=site,
                    gateway=gateway,
                    channel=channel,
                    retained=bool(msg.retain),
                    payload=text,
                )
            )

    def _on_connect(self, client: Any, *_args: Any) -> None:
        self.connected = True
        client.subscribe(topic_filter().rsplit("/", 3)[0] + "/#", qos=0)

    def _on_disconnect(self, *_args: Any) -> None:
        self.connected = False

    def start(self) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        if self._client is not None:
            return
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"linli-devtap-{id(self):x}")
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.connect_async(self.host, self.port, keepalive=30)
        client.loop_start()
        self._client = client
        self._last_poll = time.monotonic()
        self._stop.clear()
        threading.Thread(target=self._watchdog, name="devtap-watchdog", daemon=True).start()

    def _watchdog(self) -> None:
        while not self._stop.wait(min(5.0, self.idle_s)):
            if self.idle:
                log.info("developer console idle for %.0f s: MQTT tap stopped", self.idle_s)
                self.stop()
                return

    def stop(self) -> None:
        self._stop.set()
        client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()
        self.connected = False

    def since(self, after: int, limit: int) -> tuple[int, list[TapMessage]]:
        self._last_poll = time.monotonic()
        with self._lock:
            items = [m for m in self._ring if m.seq > after][-limit:]
            return self._seq, items

    @property
    def idle(self) -> bool:
        return time.monotonic() - self._last_poll > self.idle_s


def scenario_command(path: Path, host: str, port: int) -> list[str]:
    """The command line that runs one scenario against the cloud's broker (``linli sim run``)."""
    return [sys.executable, "-m", "simulators", "run", str(path), "--mqtt", f"{host}:{port}"]


@dataclass
class _Run:
    process: subprocess.Popen[bytes]
    output: Path


@dataclass
class DevConsole:
    host: str
    port: int
    scenarios_dir: Path = SCENARIOS
    tap: MqttTap | None = None
    runs: dict[str, _Run] = field(default_factory=dict)

    def scenario_files(self) -> dict[str, Path]:
        if not self.scenarios_dir.is_dir():
            return {}
        return {p.stem: p for p in sorted(self.scenarios_dir.glob("*.yaml"))}

    def status(self, name: str) -> ScenarioOut:
        run = self.runs.get(name)
        if run is None:
            return ScenarioOut(name=name, running=False, returncode=None, output_tail="")
        code = run.process.poll()
        try:
            tail = run.output.read_text(errors="replace")[-2000:]
        except OSError:
            tail = ""
        return ScenarioOut(name=name, running=code is None, returncode=code, output_tail=tail)

    def start(self, name: str) -> ScenarioOut:
        files = self.scenario_files()
        if name not in files:
            raise KeyError(name)
        current = self.runs.get(name)
        if current is not None and current.process.poll() is None:
            return self.status(name)
        output = Path(tempfile.mkstemp(prefix=f"linli-scenario-{name}-", suffix=".log")[1])
        with output.open("wb") as sink:
            process = subprocess.Popen(
                scenario_command(files[name], self.host, self.port),
                stdout=sink,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )
        self.runs[name] = _Run(process, output)
        return self.status(name)

    def stop(self, name: str) -> ScenarioOut:
        run = self.runs.get(name)
        if run is not None and run.process.poll() is None:
            run.process.terminate()
            try:
                run.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                run.process.kill()
                run.process.wait(timeout=10)
        return self.status(name)

    def close(self) -> None:
        for name in list(self.runs):
            self.stop(name)
        if self.tap is not None:
            self.tap.stop()


def console(request: Request) -> DevConsole:
    """The app's developer console, made on first use from the app's MQTT settings."""
    state = request.app.state
    existing: DevConsole | None = getattr(state, "dev_console", None)
    if existing is not None:
        return existing
    settings = getattr(state, "settings", None)
    host = str(getattr(settings, "mqtt_host", "127.0.0.1"))
    port = int(getattr(settings, "mqtt_port", 1883))
    made = DevConsole(host=host, port=port)
    atexit.register(made.close)  # no scenario process outlives the cloud
    state.dev_console = made
    return made


Console = Annotated[DevConsole, Depends(console)]


@router.get("/api/dev/scenarios")
def list_scenarios(dev: Console) -> list[ScenarioOut]:
    return [dev.status(name) for name in dev.scenario_files()]


@router.post("/api/dev/scenarios/{name}/start")
def start_scenario(name: str, dev: Console, who: Developer, db: DbSession) -> ScenarioOut:
    try:
        result = dev.start(name)
    except KeyError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no scenario {name!r}") from exc
    except OSError as exc:
        raise HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc)) from exc
    audit.record(db, who, "scenario.start", name, {})
    db.commit()
    return result


@router.post("/api/dev/scenarios/{name}/stop")
def stop_scenario(name: str, dev: Console, who: Developer, db: DbSession) -> ScenarioOut:
    if name not in dev.scenario_files():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no scenario {name!r}")
    audit.record(db, who, "scenario.stop", name, {})
    db.commit()
    return dev.stop(name)


@router.get("/api/dev/messages")
def tap_messages(
    dev: Console,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> MessagesOut:
    """MQTT messages seen since ``after`` (a ``last_seq`` from a previous answer)."""
    if dev.tap is None or not dev.tap.running:
        dev.tap = MqttTap(dev.host, dev.port)
        dev.tap.start()
    last, items = dev.tap.since(after, limit)
    return MessagesOut(connected=dev.tap.connected, last_seq=last, messages=items)

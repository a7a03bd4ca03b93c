"""``linli demo``: a broker, the cloud on SQLite and a simulated community on this machine.

Starts mosquitto when it is installed, otherwise an embedded amqtt broker (MQTT 3.1.1); the cloud
(ingest, rules, alerts, API and dashboards) on a fresh SQLite database, with split ingest as
``linli cloud run`` has it by default (a receiver child process acknowledges what it appended to
a durable raw log beside the database; docs/cloud-ingest.md); and the demo site's
simulated gateways through the real edge agent code. A demo-only admin with a generated password
is printed. After ``--smoke-after`` seconds one smoke detector goes off, and the demo reports
when its alert is on the board. Ctrl-C stops everything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("linli.demo")

DEMO_SITE = Path(__file__).resolve().parent.parent / "simulators" / "sites" / "demo.yaml"
ADMIN = "demo-admin"


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    kind: str  # "mosquitto" or "amqtt"


@contextlib.asynccontextmanager
async def start_broker(state: Path, prefer: str = "auto") -> AsyncIterator[Broker]:
    """mosquitto when installed (and not refused by ``prefer``), else an embedded amqtt."""
    from linli.services import Mosquitto, ServiceUnavailable, free_port

    if prefer in ("auto", "mosquitto"):
        try:
            broker = Mosquitto(workdir=state / "mosquitto")
        except ServiceUnavailable:
            if prefer == "mosquitto":
                raise
        else:
            await asyncio.to_thread(broker.start)
            try:
                yield Broker("127.0.0.1", broker.port, "mosquitto")
            finally:
                await asyncio.to_thread(broker.stop)
            return
    from amqtt.broker import Broker as AmqttBroker

    port = free_port()
    embedded = AmqttBroker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await embedded.start()
    try:
        yield Broker("127.0.0.1", port, "amqtt")
    finally:
        await embedded.shutdown()


def prepare_database(state: Path, db_url: str) -> str:
    """Fresh schema, the demo site imported, and a demo-only admin. Returns its password."""
    state.mkdir(parents=True, exist_ok=True)
    for pattern in ("linli.db*", "ingest-rawlog-*"):
        for leftover in state.glob(pattern):
            leftover.unlink()  # the demo starts from a clean slate every time
    from sqlalchemy.orm import Session

    from cloud.auth.service import create_admin
    from cloud.db import create_schema, make_engine
    from cloud.registry.service import Registry
    from cloud.registry.sitefile import load_site_file

    engine = make_engine(db_url)
    try:
        create_schema(engine)
        with Session(engine) as session, session.begin():
            Registry(engine).import_site(session, load_site_file(DEMO_SITE))
            _, password = create_admin(session, ADMIN, display_name="Demo admin")
        return password
    finally:
        engine.dispose()


async def _wait_for_alert(base: str, password: str, since: float, within: float) -> dict | None:  # type: ignore[type-arg]
    import httpx

    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        login = await client.post("/api/auth/login", json={"username": ADMIN, "password": password})
        login.raise_for_status()
        headers = {"Authorization": f"Bearer {login.json()['token']}"}
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            resp = await client.get("/api/alerts", headers=headers)
            resp.raise_for_status()
            body = resp.json()
            items = body["items"] if isinstance(body, dict) else body
            for alert in items:
                if "smoke" in str(alert.get("rule_id", alert.get("rule", ""))):
                    return dict(alert)
            await asyncio.sleep(0.5)
    return None


async def run(args: argparse.Namespace) -> int:
    import uvicorn

    from cloud.api.app import create_app
    from cloud.settings import Settings
    from linli.services import free_port
    from simulators.clock import ClockMode, SimClock
    from simulators.gateways import SimSite
    from simulators.site import SiteOptions, load_site, site_configs

    state: Path = args.state_dir
    db_url = f"sqlite:///{state / 'linli.db'}"
    password = await asyncio.to_thread(prepare_database, state, db_url)
    port = _preferred_port() if args.port is None else args.port or free_port()
    base = f"http://127.0.0.1:{port}"

    async with start_broker(state, args.broker) as broker:
        settings = Settings(
            db_url=db_url,
            create_schema=False,
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            mqtt_client_id="linli-demo-cloud",
            # amqtt speaks MQTT 3.1.1 only; mosquitto gets the MQTT 5 default.
            mqtt_protocol="3.1.1" if broker.kind == "amqtt" else "5",
            # What `linli cloud run` runs (its receiver speaks either protocol version).
            ingest_mode="split",
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        sitefile = load_site(DEMO_SITE)
        clock = SimClock.start(ClockMode.REALTIME)
        configs = site_configs(
            sitefile,
            SiteOptions(
                host=broker.host,
                port=broker.port,
                state_dir=state / "gateways",
                max_interval=5.0,
                protocol="3.1.1" if broker.kind == "amqtt" else "5",
            ),
        )
        async with asyncio.TaskGroup() as tg:
            serving = tg.create_task(server.serve(), name="cloud")
            while not server.started:
                if serving.done():
                    return 1
                await asyncio.sleep(0.05)
            async with SimSite(configs, clock.now, proxies=False) as sim:
                await sim.wait_connected(within=30.0)
                devices = sum(len(g.devices) for g in sim.gateways.values())
                print(
                    f"\n  Linli demo is running ({broker.kind} broker on "
                    f"{broker.host}:{broker.port}, {len(sim.gateways)} simulated gateways, "
                    f"{devices} devices)\n"
                    f"  Dashboard:  {base}/\n"
                    f"  Log in as:  {ADMIN}  /  {password}   (demo only; a new one every run)\n"
                    f"  API docs:   {base}/docs\n"
                    "  Ctrl-C stops everything.\n",
                    flush=True,
                )
                watcher = tg.create_task(
                    _smoke_then_watch(sim, base, password, args.smoke_after), name="smoke"
                )
                if args.duration is not None:
                    await asyncio.sleep(args.duration)
                    server.should_exit = True
                await serving
                watcher.cancel()
    return 0 if args.duration is None or _SMOKE_SEEN.is_set() or args.smoke_after < 0 else 1


_SMOKE_SEEN = asyncio.Event()


async def _smoke_then_watch(sim: object, base: str, password: str, after: float) -> None:
    import httpx

    from simulators.gateways import SimSite

    assert isinstance(sim, SimSite)
    if after < 0:
        return
    await asyncio.sleep(after)
    smoke = next(
        dev
        for gw in sim.gateways.values()
        for dev in gw.devices.values()
        if dev.kind.value == "smoke"
    )
    smoke.force("smoke", True)
    started = time.monotonic()
    print(f"  Simulated smoke at detector {smoke.device_id} …", flush=True)
    try:
        alert = await _wait_for_alert(base, password, started, within=60)
    except httpx.HTTPError as exc:  # the demo keeps running; the board is still there
        print(f"  Could not read the alert board: {exc!r}", flush=True)
        return
    if alert is None:
        print("  No smoke alert after 60 s: something is wrong (see the log above).", flush=True)
        return
    _SMOKE_SEEN.set()
    print(
        f"  Alert on the board after {time.monotonic() - started:.1f} s: "
        f"{json.dumps(alert, ensure_ascii=False, default=str)[:300]}",
        flush=True,
    )


def _preferred_port() -> int:
    import socket

    from linli.services import free_port

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", 8000))
        except OSError:
            return free_port()
    return 8000


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="linli demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, help="dashboard port (default 8000, else any free)")
    parser.add_argument("--state-dir", type=Path, default=Path("var/demo"))
    parser.add_argument("--broker", choices=["auto", "mosquitto", "amqtt"], default="auto")
    parser.add_argument("--smoke-after", type=float, default=10.0, help="seconds; <0: never")
    parser.add_argument("--duration", type=float, help="stop after this many seconds (tests)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        print("\n  Stopped.", file=sys.stderr)
        return 0

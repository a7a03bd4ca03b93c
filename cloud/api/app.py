"""The app factory: ``create_app(settings)``; the lifespan owns every client and loop.

Inside one TaskGroup (cancelled and awaited on shutdown): MQTT ingest (its ``on_stored`` hook
feeds the rules runner), the MQTT publisher (commands, retained configs), the rules timer, the
escalation timer and the notifier's workers. Each loop is supervised: a crash restarts it with
backoff instead of stopping the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError
from sqlalchemy.orm import sessionmaker

from cloud.alerts.escalator import Escalator
from cloud.api.metrics import make_registry
from cloud.api.routers import (
    access,
    alerts,
    commands,
    kpis,
    notifications,
    registry,
    rules,
    stream,
    system,
    telemetry,
)
from cloud.api.services import Services
from cloud.api.supervise import supervised
from cloud.api.writegate import install as fair_sqlite_writes
from cloud.commands.publisher import Publisher
from cloud.db import create_schema, make_engine
from cloud.governance import live as gov_live
from cloud.governance.deadlines import DeadlineLoop
from cloud.governance.router import router as governance_router
from cloud.governance.web import CLOCK_STATE, utcnow
from cloud.ingest.config import IngestConfig, rawlog_path
from cloud.ingest.service import Ingest
from cloud.notify import follow as live_share
from cloud.notify.dispatcher import Notifier
from cloud.notify.hub import Hub
from cloud.registry.service import Registry
from cloud.risk import runtime as risk_runtime
from cloud.risk.router import router as risk_router
from cloud.rules.configs import ConfigPusher
from cloud.rules.effects import Effects
from cloud.rules.feed import StoredFeed
from cloud.rules.lookup import RegistryLookup
from cloud.rules.packs import load_packs
from cloud.rules.runner import RulesRunner
from cloud.settings import Settings, unknown_env

log = logging.getLogger(__name__)

LOOKUP_REFRESH_S = 60.0
"""How often device tags (registry attrs) are re-read for the rules."""

OPTIONAL_ROUTERS = ("cloud.auth.router", "cloud.faces.router")


def _include_optional(app: FastAPI) -> list[str]:
    included = []
    for name in OPTIONAL_ROUTERS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                log.info("%s not installed; its routes are off", name)
                continue
            raise
        app.include_router(module.router)
        included.append(name)
    return included


def _mount_dashboards(app: FastAPI, settings: Settings) -> bool:
    try:
        dashboards = importlib.import_module("dashboards")
    except ModuleNotFoundError:
        return False
    mount = getattr(dashboards, "mount", None)
    if mount is None:
        return False
    mount(app, time_zone=settings.default_timezone)
    return True


def build_services(settings: Settings) -> Services:
    """Everything the lifespan runs, built (not started) from settings."""
    engine = make_engine(settings.db_url)
    if settings.sqlite_fair_writes:
        fair_sqlite_writes(engine)
    if settings.create_schema:
        create_schema(engine)
    sessions = sessionmaker(engine, expire_on_commit=False)
    ruleset = load_packs(settings.rule_files, include_default=settings.default_pack)
    sources = (("default pack",) if settings.default_pack else ()) + tuple(
        str(p) for p in settings.rule_files
    )
    reg = Registry(engine)
    hub = Hub()
    notifier = Notifier(
        settings.channels, sessions, hub, whistle_url=settings.escalation.whistle_url
    )
    publisher = (
        Publisher(
            settings.mqtt_host,
            settings.mqtt_port,
            f"{settings.mqtt_client_id}-pub-{settings.shard_index}",
            username=settings.mqtt_username,
            password=settings.mqtt_password,
            protocol=settings.mqtt_protocol,
        )
        if settings.mqtt_enabled
        else None
    )
    effects = Effects(settings, sessions, notifier, hub, publisher)
    escalator = Escalator(settings.escalation, sessions, notifier, hub)
    services = Services(
        settings=settings,
        engine=engine,
        sessions=sessions,
        registry=reg,
        hub=hub,
        notifier=notifier,
        effects=effects,
        escalator=escalator,
        ruleset=ruleset,
        rule_sources=sources,
        publisher=publisher,
    )
    if publisher is not None:
        services.pusher = ConfigPusher(ruleset, sessions, publisher)
    if settings.rules_enabled and settings.role != "ingest":
        pusher = services.pusher
        lookup = services.lookup = RegistryLookup(reg, sessions)
        services.runner = RulesRunner(
            ruleset,
            sessions,
            lookup,
            effects,
            hub,
            shard_index=settings.shard_index,
            shard_count=settings.shard_count,
            timezones=settings.site_timezones,
            default_timezone=settings.default_timezone,
            on_gateway_online=(
                None if pusher is None else lambda site, gw: _spawn(pusher.push(site, gw))
            ),
        )
    if settings.mqtt_enabled and settings.ingest_enabled and settings.role != "rules":
        services.ingest = Ingest(
            IngestConfig(
                host=settings.mqtt_host,
                port=settings.mqtt_port,
                client_id=settings.mqtt_client_id,
                username=settings.mqtt_username,
                password=settings.mqtt_password,
                protocol=settings.mqtt_protocol,
                sites=settings.ingest_sites,
                shared_group=settings.ingest_shared_group,
                batch_size=settings.ingest_batch_size,
                linger_s=settings.ingest_linger_s,
                queue_bound=settings.ingest_queue_bound,
                mode=settings.ingest_mode,
                rawlog_path=rawlog_path(settings),
                receiver_nice=settings.ingest_receiver_nice,
            ),
            engine,
            reg,
            on_stored=(
                None
                if services.runner is None or settings.role != "all"
                else services.runner.on_stored
            ),
        )
    return services


_background: set[asyncio.Task[None]] = set()


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Run a short job beside the loops, keeping a reference until it is done."""
    task = asyncio.get_running_loop().create_task(coro)
    _background.add(task)
    task.add_done_callback(_background.discard)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    services = await asyncio.to_thread(build_services, settings)
    # Hub, notifier and publisher must belong to this loop: rebuild their loop binding here.
    for component in (services.hub, services.notifier, services.publisher):
        if component is not None:
            component.bind_loop()
    app.state.services = services
    app.state.engine = services.engine
    app.state.sessionmaker = services.sessions
    live = app.state.gov_live = gov_live.install(services.sessions, services.hub)  # incidents
    runner = services.runner
    owns = runner.owns if runner is not None else None
    share = app.state.live_share = live_share.install(services.sessions, services.hub, owns)
    if runner is not None:
        runner.access_published = share.access_published  # alerts and access events
    app.state.metrics_registry = make_registry(services)
    if runner is not None and await asyncio.to_thread(runner.restore_state):
        log.info("rules state restored for shard %s", runner.shard_name)
    fails = services.task_failures
    tick = settings.tick_s
    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(supervised("notifier", services.notifier.run, fails))]
        feeding: list[asyncio.Task[None]] = []  # stopped first on shutdown
        if services.publisher is not None:
            tasks.append(tg.create_task(supervised("publisher", services.publisher.run, fails)))
        if services.ingest is not None:
            ingest = services.ingest
            run_ingest = ingest.run if runner is None else _after(runner.caught_up, ingest.run)
            feeding.append(tg.create_task(supervised("ingest", run_ingest, fails)))
            tasks.append(tg.create_task(_mark_ready(ingest, services.ingest_ready)))
        tasks.append(tg.create_task(supervised("effects", services.effects.run, fails)))
        # Incident changes committed by other processes (e.g. --role rules) on the stream.
        follow = supervised("incidents-elsewhere", lambda: live.follow(services.sessions), fails)
        tasks.append(tg.create_task(follow))
        # Alerts and access events published by other processes, likewise.
        shared = supervised("live-elsewhere", lambda: share.follow(services.sessions), fails)
        tasks.append(tg.create_task(shared))
        if runner is not None:
            # Role all: this process's ingest is the one writer of its sites (sequential).
            feed = StoredFeed(
                runner, settings.rules_feed, sequential=True if settings.role == "all" else None
            )
            if settings.role == "rules":
                feeding.append(tg.create_task(supervised("rules-feed", feed.run, fails)))
            else:
                # Replay what was stored but not evaluated before ingest's live batches.
                consume = _after_coro(feed.catch_up, runner.consume)
                tasks.append(tg.create_task(supervised("rules", consume, fails)))
            save = settings.rules_feed.save_every_s
            tasks.append(
                tg.create_task(supervised("rules-save", lambda: runner.save_every(save), fails))
            )
            if services.lookup is not None:
                refresh = _every(LOOKUP_REFRESH_S, services.lookup.refresh)
                tasks.append(tg.create_task(supervised("device-tags", refresh, fails)))
            tasks.append(
                tg.create_task(supervised("rules-timer", lambda: runner.run_timers(tick), fails))
            )
        tasks.append(
            tg.create_task(supervised("escalation", lambda: services.escalator.run(tick), fails))
        )
        gov = app.state.gov_deadlines = DeadlineLoop(
            services.sessions,
            services.notifier,
            channels=settings.gov_channels,
            remind_every_s=settings.gov_remind_every_s,
        )
        tasks.append(
            tg.create_task(supervised("governance", lambda: gov.run(settings.gov_tick_s), fails))
        )
        risk = app.state.risk = risk_runtime.RiskRuntime.build(
            services,
            getattr(app.state, risk_runtime.CONFIG_STATE, None),
            getattr(app.state, CLOCK_STATE, None) or utcnow,
        )
        tasks.append(tg.create_task(supervised("welfare", risk.welfare, fails)))
        tasks.append(tg.create_task(supervised("drills", risk.drills.run, fails)))
        if services.pusher is not None:
            tasks.append(tg.create_task(_push_configs(services.pusher)))
        try:
            yield
        finally:
            for task in feeding:
                task.cancel()
            if feeding:
                await asyncio.wait(feeding)
            if runner is not None:
                await _final_checkpoint(runner)
            for task in tasks:
                task.cancel()
    services.engine.dispose()


SHUTDOWN_CHECKPOINT_S = 15.0


async def _final_checkpoint(runner: RulesRunner) -> None:
    """Evaluate what ingest already handed over, apply its actions, save state + watermark.

    If that does not finish in time the last periodic checkpoint stands: the next start
    replays from there.
    """
    try:
        async with asyncio.timeout(SHUTDOWN_CHECKPOINT_S):
            await runner.drained()
            await runner.checkpoint()
    except TimeoutError:
        log.error("rules checkpoint on shutdown timed out; the next start replays more")
    except Exception:  # shutdown must finish even if the database is gone
        log.exception("could not save rules state")


def _after(
    event: asyncio.Event, job: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await event.wait()
        await job()

    return run


def _after_coro(
    first: Callable[[], Awaitable[object]], job: Callable[[], Awaitable[None]]
) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        await first()
        await job()

    return run


def _every(seconds: float, job: Callable[[], None]) -> Callable[[], Awaitable[None]]:
    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            await asyncio.to_thread(job)

    return loop


async def _push_configs(pusher: ConfigPusher) -> None:
    count = await pusher.push_all()
    log.info("rule configs published to %d gateways", count)


async def _mark_ready(ingest: Ingest, ready: asyncio.Event) -> None:
    await ingest.wait_subscribed()
    ready.set()


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    """A value the database cannot hold (e.g. an integer past 64 bits) is the client's error.

    Routers bound their parameters (cloud/api/params.py); this is the net under them, so a
    forgotten bound is a 422, never a 500.
    """
    log.info("%s %s: value out of range for the database: %s", request.method, request.url, exc)
    return JSONResponse({"detail": "a value is out of range"}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The Linli cloud app. ``settings`` default to the ``LINLI_*`` environment."""
    settings = settings or Settings()
    for name in unknown_env():
        log.warning("environment variable %s is not a Linli cloud setting (typo?)", name)
    app = FastAPI(
        title="Linli cloud",
        version="0.1.0",
        description="Alerts, devices, telemetry, access events and commands of a Linli site.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DataError, _out_of_range)
    for router in (
        system.router,
        alerts.router,
        rules.router,
        commands.router,
        registry.router,
        telemetry.router,
        access.router,
        kpis.router,
        notifications.router,
        stream.router,
        governance_router,
        risk_router,
    ):
        app.include_router(router)
    app.state.optional_routers = _include_optional(app)
    if settings.static_dashboards:
        app.state.dashboards = _mount_dashboards(app, settings)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    return app

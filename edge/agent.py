"""The edge agent: drivers → reporting → local rules → outbox → uplink, under one supervisor.

    agent = EdgeAgent(load_config("edge.yaml"))
    async with agent:          # opens the outbox, drivers' objects, actuators
        await agent.run()      # until agent.stop() (or cancellation)

Supervised tasks, each restarted with a capped backoff after a fault without touching the
others: ``driver:NAME`` per driver, ``uplink`` (connection), ``outbox`` (outbox → broker),
``inbox`` (commands and config from the cloud), ``health`` and ``rules`` (timers).

Public API for other parts of the gateway (e.g. the gate pipeline):

``agent.stamp(Model, **fields)``  make an uplink message with msg_id/boot_id/seq/ts filled in
``agent.emit(message)``           store it in the outbox (returns once it is on disk)
``agent.commands.register(name, handler)``  handle a cloud command (see edge.commands)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from edge import __version__
from edge.actuators import Actuators
from edge.commands import CommandLog, CommandProcessor, CommandRegistry, Outcome, Result
from edge.config import EdgeConfig, ReportConfig
from edge.drivers import Driver, Sample, build_driver
from edge.envelope import Stamper, utc
from edge.errors import CommandRefused
from edge.health import HealthProbe
from edge.outbox import Outbox, connect
from edge.reporting import Reporter, SafetyWatch
from edge.sender import Sender
from edge.supervisor import Backoff, TaskStats, supervise
from edge.uplink import Inbound, Uplink
from protocols.codec import decode
from protocols.errors import ProtocolError
from protocols.kinds import DeviceKind, metric
from protocols.messages import (
    Command,
    CommandAck,
    DeviceEvent,
    Envelope,
    EventPriority,
    GatewayConfig,
    Reading,
)

if TYPE_CHECKING:
    from edge.gate.service import GateService
    from edge.rules import LocalRules

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Envelope)
CONFIG_KEY = "gateway_config"


class EdgeAgent:
    def __init__(
        self,
        config: EdgeConfig,
        *,
        drivers: Sequence[Driver] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.clock = clock
        self.stamper = Stamper()
        self.boot_id = self.stamper.boot_id
        self.drivers: list[Driver] = (
            list(drivers) if drivers is not None else [build_driver(d) for d in config.drivers]
        )
        self.reporter = Reporter(config.report.policy())
        for spec in config.drivers:
            if spec.report is not None:
                for dev in spec.devices:
                    self.reporter.policies[dev.id] = spec.report.policy()
        self.safety = SafetyWatch()
        self.kinds: dict[str, DeviceKind] = {
            dev.id: dev.kind for d in self.drivers for dev in d.devices
        }
        self.commands = CommandRegistry()
        self.actuators = Actuators.from_config(config.actuators)
        self.actuators.register(self.commands)
        self.commands.register("config.update", self._config_update)
        self.uplink = Uplink(config, self.boot_id, __version__, clock=clock)
        self.stats: dict[str, TaskStats] = {}
        self.rejected = 0  # downlink messages that broke the wire contract
        self.bad_samples = 0
        self.health_interval = config.health.interval
        self.gateway_config: GatewayConfig | None = None
        self.rules: LocalRules | None = None
        self.gates: list[GateService] = []
        self._outbox: Outbox | None = None
        self._sender: Sender | None = None
        self._processor: CommandProcessor | None = None
        self._inbox: asyncio.Queue[Inbound] = asyncio.Queue()
        self._handling: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        self._closed = False

    # -- public API -----------------------------------------------------------------------

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            raise RuntimeError("the agent is not open: use 'async with agent'")
        return self._outbox

    @property
    def sender(self) -> Sender:
        if self._sender is None:
            raise RuntimeError("the agent is not open: use 'async with agent'")
        return self._sender

    def stamp(self, model: type[E], *, ts: datetime | None = None, **fields: Any) -> E:
        """Make an uplink message of this boot (msg_id, boot_id, seq; ts: now by the agent's
        clock unless given)."""
        return self.stamper.stamp(model, ts=ts or utc(self.clock()), **fields)

    def emit(self, *messages: Envelope) -> None:
        """Store messages in the outbox, in one transaction; they are sent when the uplink is up."""
        self.outbox.put_many(messages)
        if self.rules is not None:
            self.rules.observe_messages(messages)

    def stop(self) -> None:
        """Ask :meth:`run` to finish (thread-unsafe: call from the event loop)."""
        self._stop.set()

    # -- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> EdgeAgent:
        cfg = self.config
        conn = connect(cfg.db_path, cfg.outbox.synchronous.value)
        self._outbox = Outbox(conn, int(cfg.outbox.budget_mb * 1024 * 1024), clock=self.clock)
        self._sender = Sender(
            self._outbox,
            self.uplink,
            site=cfg.site,
            gateway=cfg.gateway,
            batch=cfg.outbox.batch,
            max_inflight=cfg.outbox.max_inflight,
            historical_after=cfg.outbox.historical_after,
            clock=self.clock,
        )
        self._processor = CommandProcessor(
            self.commands, CommandLog(conn), clock=lambda: utc(self.clock())
        )
        self.uplink.on_message = self._inbox.put_nowait
        if cfg.rules.enabled:
            from edge.rules import LocalRules  # imported only when used: pulls in protocols.rules

            self.rules = LocalRules(self, cfg.rules)
        if cfg.gates and not self.gates:
            from edge.gate.settings import build_services  # loads the dlib models (~1 s)

            self.gates = await asyncio.to_thread(build_services, self, cfg.gates)
        stored = self._outbox.get_kv(CONFIG_KEY)
        if stored is not None:  # the last config the cloud sent: valid offline too
            self._apply_config(GatewayConfig.model_validate_json(stored), persist=False)
        log.info(
            "edge agent %s/%s boot %s: %d driver(s), outbox %d message(s) pending",
            cfg.site,
            cfg.gateway,
            self.boot_id,
            len(self.drivers),
            self._outbox.depth,
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for task in list(self._handling):
            task.cancel()
        await asyncio.gather(*self._handling, return_exceptions=True)
        if self._sender is not None:
            self._sender.flush_acks()
        await self.uplink.close()
        self.actuators.close()
        if self._outbox is not None:
            self._outbox.close()

    def _tasks(self) -> dict[str, Callable[[], Any]]:
        tasks: dict[str, Callable[[], Any]] = {
            "uplink": self.uplink.run,
            "outbox": self.sender.run,
            "inbox": self._inbox_loop,
            "health": self._health_loop,
        }
        for driver in self.drivers:
            tasks[f"driver:{driver.name}"] = functools.partial(self._driver_loop, driver)
        if self.rules is not None:
            tasks["rules"] = self.rules.run
        for gate in self.gates:
            tasks[f"gate:{gate.gate.door}"] = gate.run
        return tasks

    async def run(self) -> None:
        """Run every supervised task until :meth:`stop`.

        Then: stop the producers (drivers, health, rules), give the outbox up to
        ``outbox.drain_timeout`` to empty, say goodbye on ``state`` and cancel the rest.
        """
        backoff = Backoff(self.config.restart.initial, self.config.restart.maximum)
        async with asyncio.TaskGroup() as tg:
            running: dict[str, asyncio.Task[None]] = {}
            for name, factory in self._tasks().items():
                stats = self.stats.setdefault(name, TaskStats())
                running[name] = tg.create_task(supervise(name, factory, backoff, stats), name=name)
            await self._stop.wait()
            producers = [t for n, t in running.items() if n not in ("uplink", "outbox", "inbox")]
            for task in producers:
                task.cancel()
            await asyncio.gather(*producers, return_exceptions=True)
            if self.uplink.connected:
                await self.sender.drain(self.config.outbox.drain_timeout)
            self.sender.flush_acks()
            await self.uplink.close()
            for task in running.values():
                task.cancel()

    # -- drivers → outbox -------------------------------------------------------------------

    async def _driver_loop(self, driver: Driver) -> None:
        async with driver:
            loop = asyncio.get_running_loop()
            due = loop.time()
            while True:
                samples = await driver.read(self.clock())
                if samples:
                    self.ingest(samples)
                due += driver.interval
                delay = due - loop.time()
                if delay < 0:  # fell behind (slow bus): do not try to catch up
                    due = loop.time()
                    delay = 0
                await asyncio.sleep(delay)

    def ingest(self, samples: Sequence[Sample]) -> None:
        """Turn one read's samples into safety events and telemetry, and store them."""
        events: list[Envelope] = []
        readings: list[Reading] = []
        for s in samples:
            try:
                change = self.safety.offer(s.device, s.kind, s.metric, s.value)
                if change is not None:
                    events.append(
                        self.stamp(
                            DeviceEvent,
                            ts=utc(s.ts),
                            device=s.device,
                            event=change.event,
                            priority=EventPriority.SAFETY,
                            value=bool(s.value),
                            attrs={"metric": s.metric},
                        )
                    )
                if change is not None:  # a safety flip is reported whatever the policy
                    self.reporter.note(s.device, s.metric, s.value, s.ts)
                if change is not None or self.reporter.offer(s.device, s.metric, s.value, s.ts):
                    info = metric(s.kind, s.metric)
                    readings.append(
                        Reading(
                            device=s.device,
                            metric=s.metric,
                            value=s.value,
                            unit=info.unit if info else None,
                            ts=utc(s.ts),
                        )
                    )
            except (ValidationError, ProtocolError) as exc:
                self.bad_samples += 1
                log.warning("bad sample %s/%s=%r dropped: %s", s.device, s.metric, s.value, exc)
        self.emit(*events, *self._telemetry(readings))

    def _telemetry(self, readings: list[Reading]) -> list[Envelope]:
        from protocols.messages import Telemetry

        size = self.config.outbox.max_readings
        return [
            self.stamp(Telemetry, ts=readings[i].ts, readings=tuple(readings[i : i + size]))
            for i in range(0, len(readings), size)
        ]

    # -- cloud → gateway --------------------------------------------------------------------

    async def _inbox_loop(self) -> None:
        """Handle each downlink message in its own task: a slow ``gallery.sync`` must not hold
        up a ``door.open`` behind it. Duplicate checks need no lock: they never await."""
        while True:
            inbound = await self._inbox.get()
            task = asyncio.create_task(self._handle_and_ack(inbound), name="inbound")
            self._handling.add(task)
            task.add_done_callback(self._handled)

    def _handled(self, task: asyncio.Task[None]) -> None:
        self._handling.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("downlink message handling failed: %s", exc, exc_info=exc)

    async def _handle_and_ack(self, inbound: Inbound) -> None:
        try:
            await self._handle_inbound(inbound)
        finally:
            self.uplink.ack(inbound)

    async def _handle_inbound(self, inbound: Inbound) -> None:
        try:
            decoded = decode(inbound.topic, inbound.payload, uplink=False)
        except ProtocolError as exc:
            self.rejected += 1
            log.warning("rejected downlink message: %s", exc)
            return
        message = decoded.message
        if isinstance(message, Command):
            await self.execute(message)
        elif isinstance(message, GatewayConfig):
            self._apply_config(message)

    async def execute(self, command: Command, *, local: bool = False) -> Outcome:
        """Run a command; one from the cloud (``local=False``) gets its CommandAck stored."""
        assert self._processor is not None
        outcome = await self._processor.handle(command)
        log.info(
            "command %s %s%s: %s %s",
            command.cmd_id,
            command.name,
            " (local)" if local else "",
            outcome.status,
            outcome.reason or "",
        )
        if local:
            return outcome
        self.emit(
            self.stamp(
                CommandAck,
                cmd_id=command.cmd_id,
                status=outcome.status,
                reason=outcome.reason,
                result=dict(outcome.result or {}),
            )
        )
        return outcome

    def _apply_config(self, config: GatewayConfig, *, persist: bool = True) -> None:
        current = self.gateway_config
        if current is not None and config.version <= current.version:
            log.debug("config version %d ignored (have %d)", config.version, current.version)
            return
        if self.rules is not None and not self.rules.load(config.rules, config.version):
            return  # a bad rule set: keep the rules we have, try the next version
        try:
            self.apply_settings(config.settings)
        except CommandRefused as exc:
            log.error("settings of config version %d not applied: %s", config.version, exc)
        self.gateway_config = config
        if persist:
            self.outbox.set_kv(CONFIG_KEY, config.model_dump_json())
        log.info("applied gateway config version %d", config.version)

    def apply_settings(self, params: dict[str, Any]) -> list[str]:
        """Runtime settings (``config.update`` params, ``GatewayConfig.settings``), all or none:
        ``report.mode``, ``report.period``, ``report.deadband``, ``health.interval``."""
        policy = self.reporter.default
        report: dict[str, Any] = {
            "mode": policy.mode,
            "period": policy.period,
            "deadband": policy.deadband,
        }
        health = self.health_interval
        for key, value in params.items():
            if key.startswith("report.") and key[7:] in report:
                report[key[7:]] = value
            elif key == "health.interval":
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise CommandRefused("health.interval must be a positive number")
                health = float(value)
            else:
                raise CommandRefused(f"unknown setting {key!r}")
        try:
            new_policy = ReportConfig.model_validate(report).policy()
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            raise CommandRefused(f"report.{err['loc'][0]}: {err['msg']}") from exc
        self.reporter.default = new_policy
        self.health_interval = health
        return sorted(params)

    async def _config_update(self, command: Command) -> Result:
        """``config.update``: see :meth:`apply_settings`."""
        return {"applied": ",".join(self.apply_settings(dict(command.params)))}

    # -- health ------------------------------------------------------------------------------

    async def _health_loop(self) -> None:
        probe = HealthProbe(self.config.db_path.parent)
        while True:
            self.emit_health(probe)
            await asyncio.sleep(self.health_interval)

    def emit_health(self, probe: HealthProbe | None = None) -> None:
        from protocols.messages import Telemetry

        probe = probe or HealthProbe(self.config.db_path.parent)
        now = utc(self.clock())
        values = probe.measure(self.outbox, self.uplink.reconnects)
        readings = tuple(
            Reading(
                device=self.config.gateway,
                metric=name,
                value=value,
                unit=info.unit if (info := metric(DeviceKind.GATEWAY, name)) else None,
                ts=now,
            )
            for name, value in values.items()
        )
        self.outbox.put(self.stamp(Telemetry, ts=now, readings=readings))

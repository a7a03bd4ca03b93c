"""Running a scenario: the virtual site, the timeline, the alert poller and the check.

    site file ──► one real EdgeAgent per gateway (simulated drivers → outbox → uplink) ──► MQTT
    timeline  ──► force/ramp readings, inject faults, emit access events, wire faults
    poller    ──► GET /api/alerts every ``poll`` s; first-seen time of each new alert
    checker   ──► JSON report; exit 0 only if every expected alert came in time

Times in a scenario are simulated seconds from the start of the timeline; see
:mod:`simulators.clock` for how they map to real time and to the timestamps readings carry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from cloud.registry.sitefile import SiteFile
from simulators.checker import CheckReport, ObservedAlert, Outcome, check, judge_actuator
from simulators.clock import SimClock
from simulators.cloudclient import CloudClient
from simulators.devices import Fault
from simulators.errors import SimulatorError
from simulators.gateways import SimSite
from simulators.scenario import FaultKind, Scenario, Step
from simulators.site import SiteOptions, check_references, load_site, site_configs
from simulators.wire import plan, publish

log = logging.getLogger(__name__)

_DEVICE_FAULTS = {
    FaultKind.DEAD_BATTERY: Fault.DEAD_BATTERY,
    FaultKind.STUCK: Fault.STUCK,
    FaultKind.NOISE_BURST: Fault.NOISE_BURST,
    FaultKind.OFFLINE: Fault.OFFLINE,
}


@dataclass(frozen=True, slots=True)
class RunOptions:
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    cloud: str | None = None
    token: str | None = None
    site: str | None = None  # run under another site id than the site file's
    state_dir: Path = Path("linli-sim-state")
    poll: float = 1.0  # real seconds between alert polls
    max_interval: float = 1.0  # real seconds: every device read at least this often
    seed: int = 0
    stop_when_met: bool = True  # end early once every expectation is met (+ grace)
    check: bool = False


@dataclass
class _Seen:
    alerts: dict[int | str, ObservedAlert] = field(default_factory=dict)
    baseline: set[int | str] = field(default_factory=set)
    polls: int = 0
    errors: list[str] = field(default_factory=list)


class ScenarioRun:
    """One run of one scenario; :meth:`run` returns the check report."""

    def __init__(
        self,
        scenario: Scenario,
        options: RunOptions,
        *,
        sitefile: SiteFile | None = None,
        cloud: CloudClient | None = None,
        on_tick: Callable[[float], Awaitable[None]] | None = None,
    ) -> None:
        """``on_tick(sim_now)`` is called every ``poll/2`` real seconds with the simulated time:
        a test running the cloud in-process drives the rules runner's timers with it."""
        self.scenario = scenario
        self.on_tick = on_tick
        self.options = options
        self.sitefile = sitefile or load_site(scenario.resolve(scenario.site))
        check_references(scenario, self.sitefile)
        self.site = options.site or self.sitefile.site
        self.cloud = cloud
        self.seen = _Seen()
        self.notes: list[str] = []
        self.t0 = 0.0  # simulated epoch time of the timeline start
        spec = scenario.clock
        wall = time.time()
        clock = SimClock.start(spec.mode, speed=spec.speed, wall=wall)
        self.clock = SimClock(spec.start_at(wall), clock.mono0, clock.speed)
        self._tasks: list[asyncio.Task[None]] = []
        self._cameras: list[asyncio.Task[None]] = []  # a camera's source plays to its end
        self.actuated: dict[tuple[str, str], float] = {}  # (gateway, device) → first seen at

    # ---- time ---------------------------------------------------------------------------------
    def elapsed(self) -> float:
        """Simulated seconds since the timeline started."""
        return self.clock.now() - self.t0

    async def sleep_until(self, at: float) -> None:
        """Sleep until the timeline reaches ``at`` (simulated seconds from its start)."""
        delay = self.clock.mono_of(self.t0 + at) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    # ---- the run ------------------------------------------------------------------------------
    async def run(self) -> CheckReport:
        configs = site_configs(
            self.sitefile,
            SiteOptions(
                host=self.options.mqtt_host,
                port=self.options.mqtt_port,
                state_dir=self.options.state_dir,
                seed=self.options.seed,
                max_interval=self.options.max_interval,
                site=self.site,
                report_period=60.0,
                # health every simulated minute (the agent sleeps in real seconds)
                health_interval=max(0.1, 60.0 / self.clock.speed),
                # back within seconds of an outage's end, so deadlines measure the cloud
                reconnect_max=3.0,
            ),
        )
        if self.cloud is not None:
            await self._poll(baseline=True)
        async with SimSite(configs, self.clock.now) as sim:
            self.sim = sim
            await sim.wait_connected(within=30.0)
            await asyncio.sleep(self.clock.real_delay(self.scenario.clock.settle))
            self.t0 = self.clock.now()
            async with asyncio.TaskGroup() as tg:
                poller = tg.create_task(self._poller(), name="sim:poller")
                ticker = tg.create_task(self._ticker(), name="sim:ticker")
                watcher = tg.create_task(self._watch_actuators(), name="sim:actuators")
                await self._timeline()
                await self._until_done()
                for camera in self._cameras:
                    await camera
                poller.cancel()
                ticker.cancel()
                watcher.cancel()
                for task in self._tasks:
                    task.cancel()
            if self.cloud is not None:
                await self._poll()
        return self.report()

    def cloud_sitefile(self) -> SiteFile:
        """The site file as the cloud must know it for this run (under the run's site id)."""
        return self.sitefile.model_copy(update={"site": self.site})

    def report(self) -> CheckReport:
        slack = self.clock.speed * self.options.poll
        notes = [*self.notes, *self.seen.errors[-5:]]
        if self.cloud is None:
            notes.append("no cloud given: alerts were not checked")
        if self.clock.speed != 1.0 and self.on_tick is None:
            notes.append(
                "accelerated clock without a cloud clock hook: silence (no-data) timers of "
                "the cloud run on its wall clock and may not fire within the run"
            )
        actuators = [
            judge_actuator(e, self.actuated.get((e.gateway, e.device)), 0.2 * self.clock.speed)
            for e in self.scenario.expect_actuators
        ]
        return check(
            self.scenario.name,
            self.scenario.expect,
            list(self.seen.alerts.values()),
            allow=self.scenario.allow,
            forbid=self.scenario.forbid,
            actuators=actuators,
            slack=slack,
            notes=notes,
        )

    async def _until_done(self) -> None:
        end = self.scenario.duration
        while self.elapsed() < end:
            if self.options.stop_when_met and self.cloud is not None and self._all_met():
                last = max((a.seen_at for a in self.seen.alerts.values()), default=0.0)
                last_step = max((s.at for s in self.scenario.steps), default=0.0)
                if self.elapsed() >= max(last, last_step) + self.scenario.grace:
                    self.notes.append(f"stopped at {self.elapsed():.0f} s: every alert met")
                    return
            await asyncio.sleep(min(self.options.poll, 0.5))

    def _all_met(self) -> bool:
        partial = check(
            self.scenario.name,
            self.scenario.expect,
            list(self.seen.alerts.values()),
            slack=self.clock.speed * self.options.poll,
        )
        acts = all((e.gateway, e.device) in self.actuated for e in self.scenario.expect_actuators)
        return acts and all(r.outcome is Outcome.MET for r in partial.expected)

    # ---- the alert poller --------------------------------------------------------------------
    async def _poller(self) -> None:
        if self.cloud is None:
            return
        while True:
            await asyncio.sleep(self.options.poll)
            await self._poll()

    async def _watch_actuators(self) -> None:
        wanted = self.scenario.expect_actuators
        while wanted:
            for exp in wanted:
                key = (exp.gateway, exp.device)
                if key not in self.actuated and self.sim.gateway(exp.gateway).actuated(exp.device):
                    self.actuated[key] = self.elapsed()
                    log.info("actuator %s/%s acted at %.1f s", *key, self.actuated[key])
            await asyncio.sleep(0.2)

    async def _ticker(self) -> None:
        if self.on_tick is None:
            return
        while True:
            await self.on_tick(self.clock.now())
            await asyncio.sleep(self.options.poll / 2)

    async def _poll(self, *, baseline: bool = False) -> None:
        assert self.cloud is not None
        try:
            alerts = await self.cloud.alerts(self.site)
        except SimulatorError as exc:
            self.seen.errors.append(str(exc))
            log.warning("alert poll failed: %s", exc)
            if baseline:
                raise
            return
        self.seen.polls += 1
        if baseline:
            self.seen.baseline = {a.id for a in alerts}
            return
        now = self.elapsed()
        for a in alerts:
            if a.id in self.seen.baseline or a.id in self.seen.alerts:
                continue
            self.seen.alerts[a.id] = ObservedAlert(
                id=a.id, rule=a.rule, severity=a.severity, subject=a.subject, seen_at=now
            )
            log.info("alert %s %s %s seen at %.1f s", a.rule, a.severity, a.subject, now)

    # ---- the timeline ------------------------------------------------------------------------
    async def _timeline(self) -> None:
        for step in self.scenario.steps:
            await self.sleep_until(step.at)
            log.info("step at %.0f s: %s %s", step.at, step.action, step.note or "")
            try:
                await self._apply(step)
            except SimulatorError as exc:
                raise SimulatorError(f"step at {step.at:g} s ({step.action}): {exc}") from exc

    def _later(self, at: float, action: Callable[[], Awaitable[None] | None], name: str) -> None:
        async def _run() -> None:
            await self.sleep_until(at)
            result = action()
            if result is not None:
                await result

        self._tasks.append(asyncio.create_task(_run(), name=name))

    async def _apply(self, step: Step) -> None:
        sim = self.sim
        if step.force is not None:
            sim.device(step.force.device).force(step.force.metric, step.force.value)
        elif step.release is not None:
            dev = sim.device(step.release.device)
            metrics = (
                [step.release.metric] if step.release.metric else [m.name for m in dev.metrics]
            )
            for m in metrics:
                dev.force(m, None)
        elif step.ramp is not None:
            self._tasks.append(asyncio.create_task(self._ramp(step), name="sim:ramp"))
        elif step.fault is not None:
            await self._fault(step)
        elif step.access is not None:
            a = step.access
            gw = sim.gateway(a.gateway)
            gw.emit_access(a)
            for i in range(1, a.repeat):
                self._later(step.at + i * a.every, partial(gw.emit_access, a), "sim:access")
        elif step.camera is not None:
            from simulators.cameras import run_camera

            self._cameras.append(
                asyncio.create_task(
                    run_camera(sim.gateway(step.camera.gateway), step.camera, self.scenario),
                    name="sim:camera",
                )
            )
        elif step.wire is not None:
            messages = plan(self.site, step.wire, self.clock.now())
            await asyncio.to_thread(
                publish, self.options.mqtt_host, self.options.mqtt_port, messages
            )

    async def _ramp(self, step: Step) -> None:
        ramp = step.ramp
        assert ramp is not None
        dev = self.sim.device(ramp.device)
        start = ramp.start
        if start is None:
            dev.force(ramp.metric, None)
            current = dict(dev.read(self.clock.now())).get(ramp.metric)
            if not isinstance(current, float):
                raise SimulatorError(f"cannot ramp {ramp.device}.{ramp.metric}: not analog")
            start = current
        tick = max(0.2, min(1.0, self.clock.real_delay(ramp.over) / 20))
        while True:
            frac = min(1.0, (self.elapsed() - step.at) / ramp.over)
            dev.force(ramp.metric, round(start + (ramp.to - start) * frac, 2))
            if frac >= 1.0:
                return
            await asyncio.sleep(tick)

    async def _fault(self, step: Step) -> None:
        f = step.fault
        assert f is not None
        end = step.at + f.duration if f.duration is not None else None
        if f.kind is FaultKind.OUTAGE:
            assert f.gateway is not None
            gw = self.sim.gateway(f.gateway)
            await gw.outage(True)
            if end is not None:
                self._later(end, lambda: gw.outage(False), "sim:outage-end")
        elif f.kind is FaultKind.CLOCK_SKEW:
            assert f.gateway is not None
            gw = self.sim.gateway(f.gateway)
            gw.skew = float(f.skew)
            if end is not None:
                self._later(end, lambda: gw.reset_skew(), "sim:skew-end")
        else:
            assert f.device is not None
            dev = self.sim.device(f.device)
            start = self.t0 + step.at
            dev.inject(
                _DEVICE_FAULTS[f.kind],
                start=start,
                end=None if end is None else self.t0 + end,
                magnitude=f.magnitude,
                metric=f.metric,
            )

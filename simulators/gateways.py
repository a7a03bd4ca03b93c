"""Simulated gateways: real :class:`edge.agent.EdgeAgent` instances, many in one process.

Each gateway is the real agent (simulated drivers → reporting → outbox → uplink) on the
simulator's clock. What the simulator adds around it:

* a :class:`LinkProxy` between the agent and the broker (optional per gateway): a network
  outage closes the agent's connection and refuses new ones, so the agent's own reconnect and
  store-and-forward code paths run, and the broker publishes the agent's last will;
* a per-gateway clock skew (``clock_skew`` fault): the agent's clock is the site clock plus
  ``skew`` seconds;
* the cheap camera mode: :meth:`SimGateway.emit_access` hands a pre-decided
  :class:`~protocols.messages.AccessEvent`, labelled ``attrs.simulated = true``, to the agent's
  public ``emit`` API, exactly as the gate pipeline does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from functools import partial
from types import TracebackType

from edge.actuators import SimulatedOutput
from edge.agent import EdgeAgent
from edge.config import EdgeConfig
from edge.drivers.simulated import SimulatedDriver
from edge.envelope import utc
from protocols.messages import AccessEvent
from simulators.devices import VirtualDevice
from simulators.errors import SimulatorError
from simulators.scenario import AccessStep

log = logging.getLogger(__name__)


class LinkProxy:
    """A TCP relay on 127.0.0.1 between one agent and the broker; ``down()`` cuts the link."""

    def __init__(self, broker_host: str, broker_port: int) -> None:
        self.broker = (broker_host, broker_port)
        self.port = 0
        self.is_up = True
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.is_up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.broker)
        except OSError as exc:
            log.warning("proxy cannot reach the broker %s:%d: %s", *self.broker, exc)
            writer.close()
            return
        self._links |= {writer, up_writer}
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pipe(reader, up_writer))
                tg.create_task(self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._links.discard(w)
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    def down(self) -> None:
        """Cut every open link and refuse new ones until :meth:`up`."""
        self.is_up = False
        self.cuts += 1
        for w in list(self._links):
            transport = w.transport
            transport.abort()

    def up(self) -> None:
        self.is_up = True

    async def close(self) -> None:
        self.down()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


def _mirror(device: VirtualDevice, metric_name: str, invert: bool, on: bool) -> None:
    device.actuate(metric_name, on != invert)


class SimGateway:
    """One gateway of the virtual site: the real agent plus the simulator's handles on it."""

    def __init__(
        self, config: EdgeConfig, clock: Callable[[], float], proxy: LinkProxy | None = None
    ) -> None:
        self.gateway = config.gateway
        self.proxy = proxy
        self.skew = 0.0
        self._base_clock = clock
        if proxy is not None:
            broker = config.broker.model_copy(update={"host": "127.0.0.1", "port": proxy.port})
            config = config.model_copy(update={"broker": broker})
        self.config = config
        self.agent = EdgeAgent(config, clock=self.now)
        self.devices: dict[str, VirtualDevice] = {}
        for driver in self.agent.drivers:
            if isinstance(driver, SimulatedDriver):
                for ident, dev in driver.virtual.items():
                    if isinstance(dev, VirtualDevice):
                        self.devices[ident] = dev
        self.access_events = 0
        self._mirror_actuators()

    def _mirror_actuators(self) -> None:
        """Door locks and sirens the agent drives also change the virtual device's reported
        state (``locked``, ``on``), so the cloud sees the door released and the siren sounding."""
        acts = self.agent.actuators
        pairs: list[tuple[str, str, bool, object]] = [
            (door.id, "locked", True, door.output) for door in acts.doors.values()
        ]
        pairs += [(siren.id, "on", False, siren.output) for siren in acts.sirens.values()]
        for ident, metric_name, invert, output in pairs:
            dev = self.devices.get(ident)
            if dev is None or not isinstance(output, SimulatedOutput):
                continue
            output.listeners.append(partial(_mirror, dev, metric_name, invert))

    def actuated(self, device: str) -> bool:
        """Whether a door lock was ever released / a siren ever sounded by the agent."""
        acts = self.agent.actuators
        actuator = acts.doors.get(device) or acts.sirens.get(device)
        if actuator is None:
            return False
        output = actuator.output
        if isinstance(output, SimulatedOutput):
            return any(on for _, on in output.history)
        return bool(output.value)

    def now(self) -> float:
        return self._base_clock() + self.skew

    def reset_skew(self) -> None:
        self.skew = 0.0

    async def outage(self, down: bool) -> None:
        if self.proxy is None:
            raise SimulatorError(f"gateway {self.gateway} runs without a link proxy: no outage")
        if down:
            log.info("outage: gateway %s cut off", self.gateway)
            self.proxy.down()
        else:
            log.info("outage over: gateway %s", self.gateway)
            self.proxy.up()

    def emit_access(self, step: AccessStep) -> None:
        """A pre-decided access event, labelled simulated (the cheap camera mode)."""
        event = self.agent.stamp(
            AccessEvent,
            ts=utc(self.now()),
            door=step.door,
            kind=step.kind,
            decision=step.decision,
            reason=step.reason,
            method=step.method,
            camera=step.camera,
            person_id=step.person_id,
            person_name=step.person_name,
            attrs={"simulated": True},
        )
        self.agent.emit(event)
        self.access_events += 1


class SimSite:
    """Every gateway of a site, running in one asyncio loop: ``async with SimSite(...) as sim``."""

    def __init__(
        self,
        configs: Sequence[EdgeConfig],
        clock: Callable[[], float],
        *,
        proxies: bool = True,
    ) -> None:
        self.configs = list(configs)
        self.clock = clock
        self.use_proxies = proxies
        self.gateways: dict[str, SimGateway] = {}
        self._where: dict[str, SimGateway] = {}
        self._stack = contextlib.AsyncExitStack()
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> SimSite:
        try:
            for config in self.configs:
                proxy = None
                if self.use_proxies:
                    proxy = LinkProxy(config.broker.host, config.broker.port)
                    await proxy.start()
                    self._stack.push_async_callback(proxy.close)
                gw = SimGateway(config, self.clock, proxy)
                await self._stack.enter_async_context(gw.agent)
                self.gateways[gw.gateway] = gw
                for ident in gw.devices:
                    self._where[ident] = gw
                self._tasks.append(asyncio.create_task(gw.agent.run(), name=f"agent:{gw.gateway}"))
        except BaseException:
            await self._shutdown()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._shutdown()

    async def _shutdown(self) -> None:
        for gw in self.gateways.values():
            gw.agent.stop()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=15.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("agent task %s ended with %r", task.get_name(), task.exception())
        self._tasks.clear()
        await self._stack.aclose()

    async def wait_connected(self, within: float) -> None:
        """Wait until every agent's uplink is connected."""
        try:
            async with asyncio.timeout(within):
                for gw in self.gateways.values():
                    await gw.agent.uplink.wait_connected()
        except TimeoutError:
            down = [g for g, gw in self.gateways.items() if not gw.agent.uplink.connected]
            raise SimulatorError(f"gateways not connected after {within:g} s: {down}") from None

    def gateway(self, ident: str) -> SimGateway:
        try:
            return self.gateways[ident]
        except KeyError:
            raise SimulatorError(f"no gateway {ident!r} in the site") from None

    def device(self, ident: str) -> VirtualDevice:
        try:
            return self._where[ident].devices[ident]
        except KeyError:
            raise SimulatorError(f"no simulated device {ident!r} in the site") from None

    def depth(self) -> int:
        """Messages waiting in every agent's outbox."""
        return sum(gw.agent.outbox.depth for gw in self.gateways.values())

"""Offline rules: the gateway evaluates the shared rule language (``protocols.rules``) itself.

Every message the agent stores is also turned into observations for a local
:class:`~protocols.rules.RuleEngine` running the edge rules (``runs_on: edge`` or ``both``):
the ones in ``rules.file``, else the default pack's, until the cloud sends a rule set in the
retained ``config`` (``GatewayConfig.rules``; only a newer version is applied).

``SendCommand`` actions run on this gateway's own actuators: always for ``runs_on: edge`` rules
(the cloud never runs them), and for ``runs_on: both`` rules only while the uplink is down,
since the cloud runs those itself when it is up (``rules.mode: always`` runs them locally all
the time). Targets are
resolved locally: a siren command goes to the gateway's siren, a door-lock command to every
door of the gateway, others to every local device of the target kind. Each local execution is
recorded as a ``rule.command`` DeviceEvent (safety lane) so the cloud learns what the gateway
did while it was away. Alerts and notifications stay the cloud's job; the gateway logs them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from edge.config import RulesConfig, RulesMode
from edge.envelope import utc
from edge.errors import ConfigError
from protocols.codec import Decoded, channel_of, new_id
from protocols.kinds import DeviceKind
from protocols.messages import (
    AccessEvent,
    AckStatus,
    Command,
    DeviceEvent,
    Envelope,
    EventPriority,
    Telemetry,
)
from protocols.rules import (
    Action,
    ClearAlert,
    Notify,
    RaiseAlert,
    RuleEngine,
    RuleError,
    RuleSet,
    RunsOn,
    SendCommand,
    edge_pack,
    load_rules,
    observations_from,
)
from protocols.topics import Channel, Topic

if TYPE_CHECKING:
    from edge.agent import EdgeAgent

log = logging.getLogger(__name__)

LOCAL_COMMAND_TTL = timedelta(seconds=60)


def initial_ruleset(config: RulesConfig) -> RuleSet:
    """The rules a gateway starts with: ``file`` if given, else the default pack's edge rules."""
    if config.file is not None:
        try:
            return load_rules(config.file).for_edge()
        except (OSError, RuleError) as exc:
            raise ConfigError(f"rules.file: {exc}", "rules.file") from exc
    try:
        return edge_pack()
    except (OSError, RuleError) as exc:  # a broken install: run without rules, loudly
        log.error(
            "default rule pack unavailable (%s): no local rules until the cloud sends some", exc
        )
        return RuleSet()


class LocalRules:
    def __init__(self, agent: EdgeAgent, config: RulesConfig) -> None:
        self.agent = agent
        self.config = config
        self.site = agent.config.site
        self.topic = {
            ch: Topic(self.site, agent.config.gateway, ch)
            for ch in (Channel.TELEMETRY, Channel.EVENT, Channel.ACCESS)
        }
        self.engine = RuleEngine(RuleSet())
        self.runs_on: dict[str, RunsOn] = {}
        self.use(initial_ruleset(config))
        self.version: int | None = None
        self.executed: list[tuple[str, str, str | None, AckStatus]] = []  # rule, name, target
        self.actions_seen = 0
        self._pending: set[asyncio.Task[None]] = set()

    # -- inputs ----------------------------------------------------------------------------

    def lookup(self, site: str, device: str) -> tuple[DeviceKind | None, str | None, str | None]:
        cfg = self.agent.config
        kind = self.agent.kinds.get(device)
        if device == cfg.gateway:
            kind = DeviceKind.GATEWAY
        return (kind, cfg.zone or cfg.gateway, cfg.building or cfg.zone or cfg.gateway)

    def observe_messages(self, messages: Iterable[Envelope]) -> None:
        for message in messages:
            if not isinstance(message, Telemetry | DeviceEvent | AccessEvent):
                continue
            decoded = Decoded(self.topic[channel_of(message)], message)
            for obs in observations_from(decoded, self.lookup):
                self.handle(self.engine.observe(obs))

    async def run(self) -> None:
        """Fire the engine's timers (``for:`` durations, no-data, windows) once a second."""
        while True:
            self.handle(self.engine.advance(self.agent.clock()))
            await asyncio.sleep(1.0)

    def load(self, rules: tuple[dict[str, object], ...], version: int) -> bool:
        """Replace the rule set with the cloud's (edge rules only). False if it is invalid."""
        try:
            ruleset = RuleSet.from_config(rules, f"config v{version}").for_edge()
        except RuleError as exc:
            log.error("rule set of config version %d refused: %s", version, exc)
            return False
        self.use(ruleset)
        self.version = version
        log.info("local rules: %d edge rule(s) from config v%d", len(ruleset.rules), version)
        return True

    def use(self, ruleset: RuleSet) -> None:
        self.engine = RuleEngine(ruleset)
        self.runs_on = {rule.id: rule.runs_on for rule in ruleset.rules}

    # -- outputs ---------------------------------------------------------------------------

    def local(self, rule_id: str) -> bool:
        """Whether this rule's commands run here now."""
        return (
            self.runs_on.get(rule_id) is RunsOn.EDGE
            or self.config.mode is RulesMode.ALWAYS
            or not self.agent.uplink.connected
        )

    def handle(self, actions: list[Action]) -> None:
        for action in actions:
            self.actions_seen += 1
            if isinstance(action, SendCommand):
                if self.local(action.rule_id):
                    for target in self.resolve(action):
                        task = asyncio.get_running_loop().create_task(
                            self._run_command(action, target), name=f"rule:{action.rule_id}"
                        )
                        self._pending.add(task)
                        task.add_done_callback(self._pending.discard)
                else:
                    log.debug("rule %s: %s left to the cloud", action.rule_id, action.name)
            elif isinstance(action, RaiseAlert):
                log.warning(
                    "rule %s raised on %s: %s", action.rule_id, action.subject, action.title_en
                )
            elif isinstance(action, ClearAlert | Notify):
                log.info("rule %s: %s on %s", action.rule_id, action.type, action.subject)

    def resolve(self, action: SendCommand) -> list[str | None]:
        kind = action.target.kind
        actuators = self.agent.actuators
        if kind is DeviceKind.SIREN:
            return [None] if actuators.sirens else []  # None: every siren
        if kind is DeviceKind.DOOR_LOCK:
            return list(actuators.doors)
        return [dev for dev, k in self.agent.kinds.items() if k is kind]

    async def _run_command(self, action: SendCommand, target: str | None) -> None:
        now = utc(self.agent.clock())
        command = Command(
            cmd_id=new_id(),
            name=action.name,
            target=target,
            params=dict(action.params),
            issued_at=now,
            expires_at=now + LOCAL_COMMAND_TTL,
            issued_by=f"rule:{action.rule_id}"[:64],
        )
        outcome = await self.agent.execute(command, local=True)
        self.executed.append((action.rule_id, action.name, target, outcome.status))
        attrs: dict[str, Any] = {
            "rule": action.rule_id[:500],
            "command": action.name,
            "status": outcome.status.value,
            "offline": not self.agent.uplink.connected,
        }
        if target is not None:
            attrs["target"] = target
        if outcome.reason:
            attrs["reason"] = outcome.reason[:500]
        self.agent.emit(
            self.agent.stamp(
                DeviceEvent,
                device=self.agent.config.gateway,
                event="rule.command",
                priority=EventPriority.SAFETY,
                attrs=attrs,
            )
        )

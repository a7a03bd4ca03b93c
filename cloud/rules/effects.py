"""Turn rule actions into effects: alert rows, commands on ``cmd``, notifications, live events.

Database work for one batch of actions runs in a worker thread in one transaction; MQTT
publishing, notifications and the live stream happen after the commit, so nobody is told about
an alert that was rolled back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service as alerts
from cloud.alerts.states import Severity
from cloud.alerts.tables import Alert
from cloud.alerts.views import AlertOut, live_event
from cloud.commands import service as commands
from cloud.commands.publisher import Publisher, PublishQueueFull
from cloud.notify.channels import Notice, notice_of
from cloud.notify.dispatcher import WHISTLE, Notifier
from cloud.notify.hub import Hub
from cloud.settings import Settings
from protocols.messages import Command
from protocols.rules.actions import ClearAlert, Notify, RaiseAlert, SendCommand
from protocols.rules.observations import Observation

log = logging.getLogger(__name__)

RuleAction = RaiseAlert | ClearAlert | SendCommand | Notify


def evidence_of(obs: Observation, role: str) -> dict[str, Any]:
    item: dict[str, Any] = {"role": role, **obs.model_dump(mode="json", exclude_none=True)}
    item.pop("tags", None)
    if obs.access is not None and obs.msg_id is not None:
        item["snapshot"] = {"access_msg_id": obs.msg_id, "door": obs.device}
    return item


@dataclass(slots=True)
class _Outcome:
    """What one batch's transaction decided, acted upon after the commit."""

    alerts: list[tuple[AlertOut, str]] = field(default_factory=list)
    notices: list[tuple[tuple[str, ...], Notice]] = field(default_factory=list)
    commands: list[tuple[str, str, Command]] = field(default_factory=list)
    whistles: list[Notice] = field(default_factory=list)
    raised: dict[tuple[str, str, str], tuple[str, set[str]]] = field(default_factory=dict)
    """(site, rule, subject) → (raise outcome, channels already told) in this batch."""


class Effects:
    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        hub: Hub,
        publisher: Publisher | None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.notifier = notifier
        self.hub = hub
        self.publisher = publisher
        self.counts: Counter[str] = Counter()

    async def apply(
        self, actions: Sequence[RuleAction], context: dict[tuple[str, str], list[Observation]]
    ) -> None:
        """Apply a batch of actions. ``context``: recent observations per (site, device)."""
        if not actions:
            return
        now = datetime.now(UTC)
        outcome = await asyncio.to_thread(self._transact, actions, context, now)
        for alert, change in outcome.alerts:
            self.hub.publish(live_event(alert, change))
        for channels, notice in outcome.notices:
            if channels:
                self.notifier.submit(channels, notice)
        for notice in outcome.whistles:
            self.notifier.whistle(notice)
        for site, gateway, command in outcome.commands:
            if self.publisher is None:
                self.counts["command_unsent"] += 1
                log.warning("no MQTT publisher: command %s not sent", command.cmd_id)
                continue
            try:
                self.publisher.send(site, gateway, command)
                self.counts["command_sent"] += 1
            except PublishQueueFull as exc:
                self.counts["command_unsent"] += 1
                log.error("command %s to %s/%s not sent: %s", command.name, site, gateway, exc)

    def _transact(
        self,
        actions: Sequence[RuleAction],
        context: dict[tuple[str, str], list[Observation]],
        now: datetime,
    ) -> _Outcome:
        out = _Outcome()
        with self.sessions.begin() as db:
            for action in actions:
                if isinstance(action, RaiseAlert):
                    self._raise(db, action, context, now, out)
                elif isinstance(action, ClearAlert):
                    cleared = alerts.clear_alert(
                        db, action.site, action.rule_id, action.subject, action.ts, now
                    )
                    if cleared is not None:
                        self.counts["cleared"] += 1
                        out.alerts.append((cleared, "cleared"))
                elif isinstance(action, SendCommand):
                    self._command(db, action, now, out)
                else:
                    self._notify(db, action, now, out)
        return out

    def _stale(self, ts: datetime, now: datetime) -> bool:
        return (now - ts).total_seconds() > self.settings.stale_after_s

    def _raise(
        self,
        db: Session,
        action: RaiseAlert,
        context: dict[tuple[str, str], list[Observation]],
        now: datetime,
        out: _Outcome,
    ) -> None:
        triggers = action.evidence
        if triggers and all(o.historical for o in triggers):
            self.counts["raise_historical_skipped"] += 1
            log.info("rule %s: raise from replayed data only, not a new alert", action.rule_id)
            return
        if self._stale(action.ts, now):
            self.counts["raise_stale_skipped"] += 1
            log.info(
                "rule %s/%s: trigger at %s is stale",
                action.rule_id,
                action.subject,
                action.ts.isoformat(),
            )
            return
        evidence = [evidence_of(o, "trigger") for o in triggers]
        seen = {(o.device, o.ts, o.msg_id, o.signal) for o in triggers}
        for obs in triggers:
            for near in context.get((obs.site, obs.device), ()):
                if (near.device, near.ts, near.msg_id, near.signal) not in seen:
                    seen.add((near.device, near.ts, near.msg_id, near.signal))
                    evidence.append(evidence_of(near, "context"))
        gateway = triggers[0].gateway if triggers else None
        spec = alerts.RaiseSpec(
            site=action.site,
            rule_id=action.rule_id,
            subject=action.subject,
            severity=Severity(action.severity.value),
            title_en=action.title_en,
            title_zh=action.title_zh,
            ts=action.ts,
            gateway=gateway,
            device=action.device,
            zone=action.zone,
            building=action.building,
            evidence=tuple(evidence),
        )
        result = alerts.raise_alert(
            db,
            spec,
            now,
            policy=self.settings.escalation,
            flap_window_s=self.settings.flap_window_s,
        )
        self.counts[f"raise_{result.outcome}"] += 1
        out.alerts.append((result.alert, result.outcome))
        told: set[str] = set()
        if result.notify:
            channels = self.settings.escalation.on_raise.get(result.alert.severity, ())
            out.notices.append((channels, notice_of(result.alert, result.outcome)))
            told.update(channels)
        out.raised[(action.site, action.rule_id, action.subject)] = (result.outcome, told)

    def _alert_id(self, db: Session, site: str, rule_id: str, subject: str) -> int | None:
        key = alerts.active_key(site, rule_id, subject)
        found = db.scalar(select(Alert.id).where(Alert.active_key == key))
        return None if found is None else int(found)

    def _command(self, db: Session, action: SendCommand, now: datetime, out: _Outcome) -> None:
        if (now - action.ts).total_seconds() > self.settings.command_ttl_s:
            self.counts["command_stale_skipped"] += 1
            log.info(
                "rule %s: command %s for %s is older than its expiry, not sent",
                action.rule_id,
                action.name,
                action.ts.isoformat(),
            )
            return
        targets = commands.resolve(db, action.target)
        if not targets:
            self.counts["command_no_target"] += 1
            log.warning(
                "rule %s: no %s device in %s %s for %s",
                action.rule_id,
                action.target.kind,
                action.target.scope,
                action.target.zone,
                action.name,
            )
            return
        alert_id = self._alert_id(db, action.site, action.rule_id, action.subject)
        for target in targets:
            command = commands.issue(
                db,
                site=target.site,
                gateway=target.gateway,
                name=action.name,
                target=target.device,
                params=dict(action.params),
                now=now,
                ttl_s=self.settings.command_ttl_s,
                issued_by=f"rule:{action.rule_id}",
                reason=f"{action.rule_id} on {action.subject}",
                rule_id=action.rule_id,
                alert_id=alert_id,
            )
            out.commands.append((target.site, target.gateway, command))

    def _notify(self, db: Session, action: Notify, now: datetime, out: _Outcome) -> None:
        alert_id = self._alert_id(db, action.site, action.rule_id, action.subject)
        wanted: tuple[str, ...] = action.channels
        raised = out.raised.get((action.site, action.rule_id, action.subject))
        if raised is not None:
            outcome, told = raised
            if outcome not in ("created", "reopened"):
                # A flapping or repeating condition tells people once, not on every raise.
                self.counts["notify_suppressed"] += 1
                return
            wanted = tuple(c for c in wanted if c not in told)
        channels = tuple(c for c in wanted if c in self.settings.channels)
        whistle = WHISTLE in wanted and WHISTLE not in self.settings.channels
        unknown = set(wanted) - set(channels) - ({WHISTLE} if whistle else set())
        if unknown:
            self.counts["notify_unknown_channel"] += len(unknown)
            log.warning("rule %s names unconfigured channel(s) %s", action.rule_id, sorted(unknown))
        if whistle and alert_id is not None:
            row = db.get_one(Alert, alert_id)
            if row.whistled_at is not None:
                whistle = False  # the outside department is called once per alert
            else:
                row.whistled_at = now
        if not channels and not whistle:
            return
        notice = Notice(
            kind="rule",
            alert_id=alert_id,
            site=action.site,
            rule_id=action.rule_id,
            subject=action.subject,
            severity=action.severity.value,
            status="cleared" if action.on_clear else "raised",
            title_en=action.title_en,
            title_zh=action.title_zh,
            ts=action.ts.isoformat(),
        )
        out.notices.append((channels, notice))
        if whistle and not action.on_clear:
            out.whistles.append(notice)

"""Turn rule actions into effects: alert rows, commands on ``cmd``, notifications, live events.

Database work for one batch of actions runs in a worker thread in one transaction; MQTT
publishing, notifications and the live stream happen after the commit, so nobody is told about
an alert that was rolled back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service as alerts
from cloud.alerts.states import Severity
from cloud.alerts.tables import Alert
from cloud.alerts.views import AlertOut, live_event
from cloud.commands import service as commands
from cloud.commands.publisher import Publisher, PublishQueueFull
from cloud.governance.grouping import on_alert_raised
from cloud.notify.channels import Notice, notice_of
from cloud.notify.dispatcher import WHISTLE, Notifier
from cloud.notify.hub import Hub
from cloud.settings import Settings
from cloud.storage.tables import Reading, Series
from protocols.messages import Command
from protocols.rules.actions import ClearAlert, Notify, RaiseAlert, SendCommand
from protocols.rules.observations import Observation

log = logging.getLogger(__name__)

RuleAction = RaiseAlert | ClearAlert | SendCommand | Notify

QUEUE_ITEMS = 10_000
MAX_ACTIONS_PER_TRANSACTION = 2_000
RETRIES = 6

EVIDENCE_WINDOW = timedelta(seconds=60)
EVIDENCE_READINGS = 20
"""Stored readings of the trigger devices kept with a new alert: the minute before, at most."""


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
        self._warned_channels: set[tuple[str, str]] = set()
        self.counts: Counter[str] = Counter()
        self._queue: asyncio.Queue[list[RuleAction]] = asyncio.Queue(QUEUE_ITEMS)
        self.apply_seconds = 0.0
        self.apply_max_s = 0.0
        self.submitted = 0
        """Action lists queued so far; :meth:`applied_through` waits for a count of them."""
        self._applied = 0
        self._progress = asyncio.Event()

    async def submit(self, actions: Sequence[RuleAction]) -> None:
        """Queue actions for :meth:`run` (waits only when the queue is full: back-pressure).

        Evaluation never waits for the database: on SQLite an alert's transaction can wait for
        ingest's write lock, and the rules must keep up with the stream meanwhile.
        """
        if actions:
            await self._queue.put(list(actions))
            self.submitted += 1

    async def applied_through(self, mark: int) -> None:
        """Wait until the first ``mark`` submitted action lists were applied (or given up).

        Unlike :meth:`drained` it does not wait for lists submitted after ``mark``, so a
        checkpoint under a steady stream finishes.
        """
        while self._applied < mark:
            self._progress.clear()
            await self._progress.wait()

    def _done(self, taken: int) -> None:
        for _ in range(taken):
            self._queue.task_done()
        self._applied += taken
        self._progress.set()

    async def run(self) -> None:
        """Apply queued actions in order, everything waiting in one transaction; until cancelled."""
        while True:
            batch = await self._queue.get()
            taken = 1
            while not self._queue.empty() and len(batch) < MAX_ACTIONS_PER_TRANSACTION:
                batch.extend(self._queue.get_nowait())
                taken += 1
            try:
                await self._apply_with_retry(batch)
            finally:
                self._done(taken)

    async def run_once(self) -> int:
        """Apply whatever is queued now (tests and tools that run no :meth:`run` task)."""
        batch: list[RuleAction] = []
        taken = 0
        while not self._queue.empty():
            batch.extend(self._queue.get_nowait())
            taken += 1
        try:
            if batch:
                await self._apply_with_retry(batch)
        finally:
            self._done(taken)
        return len(batch)

    async def drained(self) -> None:
        """Wait until every queued action was applied (tests, shutdown)."""
        await self._queue.join()

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def _apply_with_retry(self, actions: list[RuleAction]) -> None:
        delay = 0.5
        for attempt in range(1, RETRIES + 1):
            try:
                await self.apply(actions)
                return
            except (OperationalError, DBAPIError) as exc:
                self.counts["apply_retries"] += 1
                log.warning(
                    "applying %d rule actions failed (attempt %d): %s", len(actions), attempt, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        self.counts["actions_lost"] += len(actions)
        log.error("gave up on %d rule actions after %d attempts", len(actions), RETRIES)

    async def apply(self, actions: Sequence[RuleAction]) -> None:
        """Apply a batch of actions (one transaction), then tell the outside world."""
        if not actions:
            return
        now = datetime.now(UTC)
        started = time.perf_counter()
        outcome = await asyncio.to_thread(self._transact, actions, now)
        took = time.perf_counter() - started
        self.apply_seconds += took
        self.apply_max_s = max(self.apply_max_s, took)
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
        now: datetime,
    ) -> _Outcome:
        out = _Outcome()
        with self.sessions.begin() as db:
            for action in actions:
                if isinstance(action, RaiseAlert):
                    self._raise(db, action, now, out)
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
        evidence += self._readings_before(db, triggers)
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
        if result.outcome in ("created", "reopened"):  # governance: group into an incident
            on_alert_raised(db, result.alert, window_s=self.settings.gov_group_window_s,
                            min_severity=self.settings.gov_group_min_severity, now=now)  # fmt: skip
        told: set[str] = set()
        if result.notify:
            channels = self.settings.escalation.on_raise.get(result.alert.severity, ())
            out.notices.append((channels, notice_of(result.alert, result.outcome)))
            told.update(channels)
        out.raised[(action.site, action.rule_id, action.subject)] = (result.outcome, told)

    def _readings_before(
        self, db: Session, triggers: Sequence[Observation]
    ) -> list[dict[str, Any]]:
        """The stored readings of the trigger devices in the minute before the trigger."""
        out: list[dict[str, Any]] = []
        for device in dict.fromkeys((o.site, o.device) for o in triggers):
            last = max(o.ts for o in triggers if (o.site, o.device) == device)
            rows = db.execute(
                select(Series.metric, Reading.value, Reading.ts)
                .join(Series, Series.id == Reading.series)
                .where(
                    Series.site == device[0],
                    Series.device == device[1],
                    Reading.ts >= last - EVIDENCE_WINDOW,
                    Reading.ts <= last,
                )
                .order_by(Reading.ts.desc())
                .limit(EVIDENCE_READINGS)
            ).all()
            out += [
                {"role": "context", "device": device[1], "metric": m, "value": v,
                 "ts": ts.isoformat()}
                for m, v, ts in reversed(rows)
            ]  # fmt: skip
        return out

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
        whistle = (
            WHISTLE in wanted
            and WHISTLE not in self.settings.channels
            and self.settings.escalation.whistle_url is not None
        )
        unknown = set(wanted) - set(channels) - ({WHISTLE} if whistle else set())
        if unknown:
            self.counts["notify_unknown_channel"] += len(unknown)
            # The shipped pack names channels (e.g. "sms") a site may not configure: say so once
            # per rule and channel, then only count.
            fresh = {(action.rule_id, c) for c in unknown} - self._warned_channels
            if fresh:
                self._warned_channels |= fresh
                log.warning(
                    "rule %s names unconfigured channel(s) %s (define them in LINLI_CHANNELS)",
                    action.rule_id,
                    sorted(c for _, c in fresh),
                )
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

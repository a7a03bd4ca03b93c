"""The escalation timer: unacknowledged alerts climb the policy's tiers; critical ones whistle.

Runs every ``tick_s`` in the app's TaskGroup. The database decides what is due
(``next_escalation_at``), so several cloud processes may run it: each escalation locks its row.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service
from cloud.alerts.states import IllegalTransition
from cloud.alerts.views import live_event
from cloud.commands import service as commands
from cloud.notify.channels import notice_of
from cloud.notify.dispatcher import Notifier
from cloud.notify.hub import Hub
from cloud.settings import EscalationPolicy

log = logging.getLogger(__name__)


class Escalator:
    def __init__(
        self,
        policy: EscalationPolicy,
        sessions: sessionmaker[Session],
        notifier: Notifier,
        hub: Hub,
    ) -> None:
        self.policy = policy
        self.sessions = sessions
        self.notifier = notifier
        self.hub = hub
        self.escalated = 0
        self.whistles = 0
        self.expired_commands = 0

    def _due(self, now: datetime) -> list[service.Escalation]:
        done: list[service.Escalation] = []
        with self.sessions() as db:
            due = service.due_escalations(db, now)
        for alert_id in due:
            with self.sessions.begin() as db:
                # Re-checked under the row lock: another process may have escalated it already.
                current = service.get_alert(db, alert_id)
                if current.next_escalation_at is None or current.next_escalation_at > now:
                    continue
                try:
                    done.append(service.escalate(db, alert_id, service.SYSTEM, now, self.policy))
                except IllegalTransition:
                    continue  # acknowledged meanwhile
        with self.sessions.begin() as db:
            self.expired_commands += commands.expire(db, now)
        return done

    def announce(self, esc: service.Escalation) -> None:
        """Notify the tier's channels, whistle if asked, tell live viewers."""
        self.escalated += 1
        self.notifier.submit(esc.channels, notice_of(esc.alert, "escalated"))
        if esc.whistle:
            self.whistles += 1
            self.notifier.whistle(notice_of(esc.alert, "whistle"))
        self.hub.publish(live_event(esc.alert, "escalated"))

    async def tick(self, now: datetime | None = None) -> int:
        now = now or datetime.now(UTC)
        escalations = await asyncio.to_thread(self._due, now)
        for esc in escalations:
            self.announce(esc)
        return len(escalations)

    async def run(self, tick_s: float) -> None:
        while True:
            await asyncio.sleep(tick_s)
            await self.tick()

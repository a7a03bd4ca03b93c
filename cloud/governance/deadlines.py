"""The deadline loop: missed deadlines blow the whistle, overdue whistle stages are reminded,
and after two reminders the residents' committee's leads are told.

:func:`due` is pure (plain values and ``now`` in, decisions out) and tested without clocks;
:class:`DeadlineLoop` reads the database, applies each decision in its own transaction and then
notifies through cloud/notify. One bad item is logged and skipped; the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.tables import Notification
from cloud.governance import catalogue
from cloud.governance.errors import GovError
from cloud.governance.journal import SYSTEM, record
from cloud.governance.orgs import members, orgs_serving
from cloud.governance.states import State
from cloud.governance.tables import Incident, Organisation, Whistle
from cloud.governance.web import utcnow
from cloud.governance.whistles import StageName, StageTimes, blow, overdue_stage
from cloud.notify.channels import Notice
from cloud.notify.dispatcher import Notifier

log = logging.getLogger(__name__)

REMINDERS_BEFORE_ESCALATION = 2


@dataclass(frozen=True, slots=True)
class IncidentClock:
    id: int
    state: State
    due_at: datetime | None
    deadline_missed_at: datetime | None


@dataclass(frozen=True, slots=True)
class WhistleClock:
    id: int
    times: StageTimes
    reminders: int
    reminder_stage: str | None
    last_reminder_at: datetime | None
    escalated_stage: str | None


@dataclass(frozen=True, slots=True)
class Due:
    kind: Literal["deadline", "remind", "escalate"]
    id: int
    """The incident (deadline) or the whistle (remind, escalate)."""
    stage: StageName | None = None


def due(
    incidents: Iterable[IncidentClock],
    whistles: Iterable[WhistleClock],
    now: datetime,
    *,
    remind_every: timedelta,
) -> list[Due]:
    """What is due at ``now``:

    * an unresolved incident past ``due_at``, not yet seen past it → ``deadline`` (whistle);
    * a whistle whose pending stage is past its deadline → ``remind``, again every
      ``remind_every``; after 2 reminders of that stage, ``remind_every`` later → ``escalate``
      (once per stage).
    """
    out: list[Due] = []
    for inc in incidents:
        missed = inc.due_at is not None and inc.due_at <= now
        if inc.state.unresolved and missed and inc.deadline_missed_at is None:
            out.append(Due("deadline", inc.id))
    for w in whistles:
        stage = overdue_stage(w.times, now)
        if stage is None:
            continue
        same = w.reminder_stage == stage
        count = w.reminders if same else 0
        last = w.last_reminder_at if same else None
        if last is not None and now - last < remind_every:
            continue
        if count < REMINDERS_BEFORE_ESCALATION:
            out.append(Due("remind", w.id, stage))
        elif w.escalated_stage != stage:
            out.append(Due("escalate", w.id, stage))
    return out


def _notice(inc: Incident, kind: str, title_en: str, title_zh: str, now: datetime,
            note: str | None = None) -> Notice:  # fmt: skip
    return Notice(
        kind=kind,
        alert_id=None,
        site=inc.site,
        rule_id="governance",
        subject=f"incident-{inc.id}",
        severity=inc.severity,
        status=inc.state,
        title_en=title_en[:200],
        title_zh=title_zh[:200],
        zone=inc.zone,
        building=inc.building,
        ts=now.isoformat(),
        note=note,
        drill=inc.drill,
    )


class DeadlineLoop:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        notifier: Notifier | None,
        *,
        channels: Sequence[str] = (),
        remind_every_s: float = 900.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.notifier = notifier
        self.channels = tuple(channels)
        self.remind_every = timedelta(seconds=remind_every_s)
        self.clock = clock
        self.failures = 0

    def _snapshot(
        self, db: Session, now: datetime
    ) -> tuple[list[IncidentClock], list[WhistleClock]]:
        unresolved = [s.value for s in State if s.unresolved]
        incs = db.execute(
            select(Incident.id, Incident.state, Incident.due_at, Incident.deadline_missed_at)
            .where(Incident.state.in_(unresolved), Incident.due_at <= now,
                   Incident.deadline_missed_at.is_(None))
        ).all()  # fmt: skip
        live = [s.value for s in State if not s.terminal]
        rows = db.scalars(
            select(Whistle)
            .join(Incident, Incident.id == Whistle.incident_id)
            .where(Whistle.resolved_at.is_(None), Incident.state.in_(live))
        )
        whistles = [
            WhistleClock(w.id, StageTimes.of(w), w.reminders, w.reminder_stage,
                         w.last_reminder_at, w.escalated_stage)
            for w in rows
        ]  # fmt: skip
        return [IncidentClock(i, State(s), d, m) for i, s, d, m in incs], whistles

    def step(self, now: datetime | None = None) -> list[Due]:
        """One pass: decide, apply each decision (own transaction), notify. Returns what was
        applied."""
        now = now or self.clock()
        with self.sessions() as db:
            incs, whistles = self._snapshot(db, now)
        done: list[Due] = []
        for item in due(incs, whistles, now, remind_every=self.remind_every):
            try:
                with self.sessions.begin() as db:
                    notices = self._apply(db, item, now)
            except (GovError, SQLAlchemyError) as exc:
                self.failures += 1
                log.error("governance deadline %s %s failed: %s", item.kind, item.id, exc)
                continue
            done.append(item)
            if self.notifier is not None and self.channels:
                for notice in notices:
                    self.notifier.submit(self.channels, notice)
        return done

    def _apply(self, db: Session, item: Due, now: datetime) -> list[Notice]:
        if item.kind == "deadline":
            return self._deadline(db, item.id, now)
        whistle = db.get_one(Whistle, item.id, with_for_update=True)
        inc = db.get_one(Incident, whistle.incident_id)
        org = db.get_one(Organisation, whistle.org_id)
        assert item.stage is not None
        if item.kind == "remind":
            return [self._remind(db, whistle, inc, org, item.stage, now)]
        return [self._escalate(db, whistle, inc, org, item.stage, now)]

    def _deadline(self, db: Session, incident_id: int, now: datetime) -> list[Notice]:
        inc = db.get_one(Incident, incident_id, with_for_update=True)
        if inc.deadline_missed_at is not None or not State(inc.state).unresolved:
            return []  # another process got there first, or it was resolved meanwhile
        inc.deadline_missed_at = now
        item = catalogue.item_for(db, inc.category)
        found: list[int] = []
        missing: list[str] = []
        for department in item.whistle_departments:
            ids = orgs_serving(db, inc.site, inc.building, ["department"], zone=inc.zone,
                               department=department)  # fmt: skip
            if ids:
                found.append(ids[0])
            else:
                missing.append(department)
        record(db, inc.id, SYSTEM, "deadline_missed", now,
               {"due_at": inc.due_at.isoformat() if inc.due_at else None,
                "whistle_departments": list(item.whistle_departments),
                "no_department_for": missing})  # fmt: skip
        made = blow(db, inc.id, found, reason="deadline", actor=SYSTEM, now=now, auto=True)
        names = [db.get_one(Organisation, o).name for o in found]
        title_en = f"Deadline missed: incident #{inc.id}, whistle to {', '.join(names) or '-'}"
        title_zh = f"工单 #{inc.id} 超时未办结，已吹哨：{'、'.join(names) or '无'}"
        return [_notice(inc, "gov_deadline", title_en, title_zh, now, note=f"whistles {made}")]

    def _remind(self, db: Session, w: Whistle, inc: Incident, org: Organisation,
                stage: StageName, now: datetime) -> Notice:  # fmt: skip
        w.reminders = (w.reminders if w.reminder_stage == stage else 0) + 1
        w.reminder_stage = stage
        w.last_reminder_at = now
        record(db, inc.id, SYSTEM, "whistle_reminder", now,
               {"whistle_id": w.id, "org_id": org.id, "org_name": org.name,
                "org_name_en": org.name_en, "stage": stage, "reminder": w.reminders})  # fmt: skip
        title_en = f"Reminder {w.reminders}: {org.name} has not reported {stage} (#{inc.id})"
        title_zh = f"第{w.reminders}次催办：{org.name} 未{_STAGE_ZH[stage]}（工单 #{inc.id}）"
        db.add(Notification(ts=now, alert_id=None, role="responder", severity=inc.severity,
                            title_en=title_en[:200], title_zh=title_zh[:200],
                            reason="gov_reminder"))  # fmt: skip
        return _notice(inc, "gov_reminder", title_en, title_zh, now)

    def _escalate(self, db: Session, w: Whistle, inc: Incident, org: Organisation,
                  stage: StageName, now: datetime) -> Notice:  # fmt: skip
        w.escalated_stage = stage
        committees = orgs_serving(db, inc.site, inc.building, ["committee"], zone=inc.zone)
        leads = [m.username for c in committees for m in members(db, c, role="lead")]
        record(db, inc.id, SYSTEM, "whistle_escalated", now,
               {"whistle_id": w.id, "org_id": org.id, "org_name": org.name,
                "org_name_en": org.name_en, "stage": stage, "committee_ids": committees,
                "leads": leads})  # fmt: skip
        title_en = f"Escalated: {org.name} still has not reported {stage} (#{inc.id})"
        title_zh = f"升级：{org.name} 经两次催办仍未{_STAGE_ZH[stage]}（工单 #{inc.id}）"
        return _notice(inc, "gov_escalated", title_en, title_zh, now,
                       note=f"committee leads: {', '.join(leads) or '-'}")  # fmt: skip

    async def run(self, tick_s: float) -> None:
        """Seed the catalogue, then a pass every ``tick_s`` (in the app's TaskGroup)."""
        await asyncio.to_thread(self._seed)
        while True:
            await asyncio.sleep(tick_s)
            await asyncio.to_thread(self.step)

    def _seed(self) -> None:
        with self.sessions.begin() as db:
            added = catalogue.seed(db)
        if added:
            log.info("service catalogue: %d default categories added", added)


_STAGE_ZH = {"ack": "响应", "arrive": "到场", "resolve": "办结"}

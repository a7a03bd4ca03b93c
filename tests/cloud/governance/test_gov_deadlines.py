"""The deadline loop: the pure ``due`` on plain values, then the loop on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.tables import Notification
from cloud.governance import incidents, whistles
from cloud.governance.deadlines import DeadlineLoop, Due, IncidentClock, WhistleClock, due
from cloud.governance.states import State
from cloud.governance.whistles import StageTimes
from tests.cloud.governance.conftest import SITE, make_orgs

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
EVERY = timedelta(minutes=15)


def m(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def times(acked: datetime | None = None, arrived: datetime | None = None) -> StageTimes:
    return StageTimes(m(15), m(60), m(24 * 60), acked, arrived, None)


def wc(t: StageTimes, reminders: int = 0, stage: str | None = None,
       last: datetime | None = None, escalated: str | None = None) -> WhistleClock:  # fmt: skip
    return WhistleClock(1, t, reminders, stage, last, escalated)


def test_incident_deadline_once_and_only_unresolved() -> None:
    inc = IncidentClock(5, State.IN_PROGRESS, m(10), None)
    assert due([inc], [], m(9), remind_every=EVERY) == []
    assert due([inc], [], m(10), remind_every=EVERY) == [Due("deadline", 5)]
    seen = IncidentClock(5, State.IN_PROGRESS, m(10), m(10))
    assert due([seen], [], m(99), remind_every=EVERY) == []
    for state in (State.RESOLVED, State.CLOSED, State.CANCELLED):
        assert due([IncidentClock(5, state, m(10), None)], [], m(11), remind_every=EVERY) == []
    assert due([IncidentClock(5, State.OPEN, None, None)], [], m(11), remind_every=EVERY) == []


def test_reminders_then_escalation_per_stage() -> None:
    t = times()
    assert due([], [wc(t)], m(14), remind_every=EVERY) == []
    assert due([], [wc(t)], m(15), remind_every=EVERY) == [Due("remind", 1, "ack")]
    once = wc(t, 1, "ack", m(15))
    assert due([], [once], m(29), remind_every=EVERY) == []
    assert due([], [once], m(30), remind_every=EVERY) == [Due("remind", 1, "ack")]
    twice = wc(t, 2, "ack", m(30))
    assert due([], [twice], m(44), remind_every=EVERY) == []
    assert due([], [twice], m(45), remind_every=EVERY) == [Due("escalate", 1, "ack")]
    assert due([], [wc(t, 2, "ack", m(30), "ack")], m(90), remind_every=EVERY) == []
    # Acknowledged: the arrive stage is overdue at 60 min, and its reminders start afresh.
    later = wc(times(acked=m(20)), 2, "ack", m(30), "ack")
    assert due([], [later], m(59), remind_every=EVERY) == []
    assert due([], [later], m(60), remind_every=EVERY) == [Due("remind", 1, "arrive")]
    done = wc(StageTimes(m(15), m(60), m(90), m(1), m(2), m(3)))
    assert due([], [done], m(999), remind_every=EVERY) == []


def test_loop_whistles_reminds_and_escalates(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        o = make_orgs(db)
        iid = incidents.open_incident(db, site=SITE, title="火灾隐患", category="fire_hazard",
                                      source="manual", actor="mgr", building="b1",
                                      now=T0)  # fmt: skip
    loop = DeadlineLoop(sessions, None, remind_every_s=EVERY.total_seconds())
    assert loop.step(m(12 * 60 - 1)) == []
    assert loop.step(m(12 * 60)) == [Due("deadline", iid)]
    with sessions() as db:
        [w] = whistles.whistles_of(db, iid, m(12 * 60))
        assert (w.org_id, w.auto, w.ack_due) == (o.fire, True, m(12 * 60 + 15))
    start = 12 * 60 + 15
    assert loop.step(m(start)) == [Due("remind", w.id, "ack")]
    assert loop.step(m(start + 15)) == [Due("remind", w.id, "ack")]
    assert loop.step(m(start + 30)) == [Due("escalate", w.id, "ack")]
    assert loop.step(m(start + 45)) == []
    with sessions() as db:
        lines = incidents.timeline(db, iid)
        [board] = whistles.list_whistles(db, m(start + 45), open_only=True)
        told = list(db.scalars(select(Notification.reason).where(Notification.role == "responder")))
    assert [e["action"] for e in lines] == ["opened", "deadline_missed", "whistle",
                                            "whistle_reminder", "whistle_reminder",
                                            "whistle_escalated"]  # fmt: skip
    assert lines[-1]["detail"]["leads"] == ["lead1"]
    assert lines[-1]["detail"]["committee_ids"] == [o.committee]
    assert (board.reminders, board.overdue_stage, board.escalated_stage) == (2, "ack", "ack")
    assert told == ["gov_reminder", "gov_reminder"]


def test_deadline_without_a_department_is_recorded(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        iid = incidents.open_incident(db, site="lonely", title="x", category="noise",
                                      source="manual", actor="mgr", now=T0)  # fmt: skip
    loop = DeadlineLoop(sessions, None)
    assert loop.step(m(48 * 60)) == [Due("deadline", iid)]
    with sessions() as db:
        last = incidents.timeline(db, iid)[-1]
        assert whistles.whistles_of(db, iid, m(48 * 60)) == []
    assert (last["action"], last["detail"]["no_department_for"]) == ("deadline_missed", ["police"])

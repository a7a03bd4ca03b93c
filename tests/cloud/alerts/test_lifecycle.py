"""The alert workflow on a real database: transitions, refusals, one active alert, flapping."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service
from cloud.alerts.states import IllegalTransition, Severity, Status, Transition
from cloud.alerts.tables import Alert
from cloud.alerts.views import AlertOut
from cloud.settings import EscalationPolicy, Tier

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def spec(
    ts: datetime = T0, subject: str = "smoke-1", severity: Severity = Severity.CRITICAL
) -> service.RaiseSpec:
    return service.RaiseSpec(
        site="s1",
        rule_id="smoke-alarm",
        subject=subject,
        severity=severity,
        title_en="Smoke alarm",
        title_zh="烟雾报警",
        ts=ts,
        device=subject,
        evidence=({"device": subject, "metric": "smoke", "value": True, "ts": ts.isoformat()},),
    )


def raise_(sessions: sessionmaker[Session], s: service.RaiseSpec) -> service.RaiseOutcome:
    with sessions.begin() as db:
        return service.raise_alert(db, s, T0)


def act(sessions: sessionmaker[Session], alert_id: int, t: Transition, **kw: str) -> AlertOut:
    with sessions.begin() as db:
        return service.transition(db, alert_id, t, "mgr", T0 + timedelta(minutes=1), **kw)


def test_full_lifecycle_is_recorded_in_the_timeline(sessions: sessionmaker[Session]) -> None:
    created = raise_(sessions, spec())
    assert created.outcome == "created" and created.alert.status is Status.OPEN
    aid = created.alert.id
    assert act(sessions, aid, Transition.ACKNOWLEDGE).status is Status.ACKNOWLEDGED
    assert act(sessions, aid, Transition.ASSIGN, assignee="guard1").assignee == "guard1"
    assert act(sessions, aid, Transition.START).status is Status.IN_PROGRESS
    assert act(sessions, aid, Transition.COMMENT, note="on my way").status is Status.IN_PROGRESS
    resolved = act(sessions, aid, Transition.RESOLVE, note="false alarm: cooking")
    assert resolved.status is Status.RESOLVED and resolved.resolved_by == "mgr"
    closed = act(sessions, aid, Transition.CLOSE)
    assert closed.status is Status.CLOSED
    with sessions() as db:
        kinds = [(e.kind, e.from_status, e.to_status) for e in service.timeline(db, aid)]
        assert db.get_one(Alert, aid).active_key is None
    assert kinds == [
        ("raised", None, Status.OPEN),
        ("acknowledge", Status.OPEN, Status.ACKNOWLEDGED),
        ("assign", None, None),
        ("start", Status.ACKNOWLEDGED, Status.IN_PROGRESS),
        ("comment", None, None),
        ("resolve", Status.IN_PROGRESS, Status.RESOLVED),
        ("close", Status.RESOLVED, Status.CLOSED),
    ]


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ((), Transition.START),
        ((), Transition.CLOSE),
        ((), Transition.RESOLVE),
        ((Transition.ACKNOWLEDGE,), Transition.ACKNOWLEDGE),
        ((Transition.ACKNOWLEDGE, Transition.RESOLVE), Transition.START),
        ((Transition.ACKNOWLEDGE, Transition.RESOLVE, Transition.CLOSE), Transition.ACKNOWLEDGE),
    ],
)
def test_illegal_transitions_are_refused_and_change_nothing(
    sessions: sessionmaker[Session], path: tuple[Transition, ...], illegal: Transition
) -> None:
    aid = raise_(sessions, spec()).alert.id
    for t in path:
        act(sessions, aid, t)
    with sessions() as db:
        before = service.get_alert(db, aid)
        n_events = len(service.timeline(db, aid))
    with pytest.raises(IllegalTransition, match=illegal.value):
        act(sessions, aid, illegal)
    with sessions() as db:
        assert service.get_alert(db, aid) == before
        assert len(service.timeline(db, aid)) == n_events


def test_repeated_raise_bumps_count_and_clear_is_not_resolution(
    sessions: sessionmaker[Session],
) -> None:
    first = raise_(sessions, spec())
    again = raise_(sessions, spec(T0 + timedelta(seconds=5)))
    assert again.outcome == "repeated" and again.alert.id == first.alert.id
    assert again.alert.count == 2 and again.alert.last_seen == T0 + timedelta(seconds=5)
    with sessions.begin() as db:
        cleared = service.clear_alert(db, "s1", "smoke-alarm", "smoke-1", T0 + timedelta(10), T0)
    assert cleared is not None and cleared.cleared and cleared.status is Status.OPEN


def test_flapping_condition_stays_one_alert_marked_flapping(
    sessions: sessionmaker[Session],
) -> None:
    ts = T0
    for _ in range(20):
        raise_(sessions, spec(ts))
        ts += timedelta(seconds=0.2)
        with sessions.begin() as db:
            service.clear_alert(db, "s1", "smoke-alarm", "smoke-1", ts, T0)
        ts += timedelta(seconds=0.2)
    with sessions() as db:
        alerts = service.list_alerts(db, service.AlertFilter(site="s1"))
    assert len(alerts) == 1
    assert alerts[0].flapping and alerts[0].flap_count == 19 and alerts[0].count == 20


def test_raise_after_resolution_reopens_and_after_close_creates_new(
    sessions: sessionmaker[Session],
) -> None:
    aid = raise_(sessions, spec()).alert.id
    act(sessions, aid, Transition.ACKNOWLEDGE)
    act(sessions, aid, Transition.RESOLVE)
    reopened = raise_(sessions, spec(T0 + timedelta(hours=1)))
    assert reopened.outcome == "reopened" and reopened.alert.id == aid
    assert reopened.alert.status is Status.OPEN
    act(sessions, aid, Transition.ACKNOWLEDGE)
    act(sessions, aid, Transition.RESOLVE)
    act(sessions, aid, Transition.CLOSE)
    fresh = raise_(sessions, spec(T0 + timedelta(hours=2)))
    assert fresh.outcome == "created" and fresh.alert.id != aid


def test_exactly_one_active_alert_under_concurrent_raises(
    sessions: sessionmaker[Session],
) -> None:
    n = 8
    barrier = threading.Barrier(n)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait()
            outcomes.append(raise_(sessions, spec(T0 + timedelta(seconds=i))).outcome)
        except BaseException as exc:  # collected and re-raised by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(outcomes) == ["created"] + ["repeated"] * (n - 1)
    with sessions() as db:
        rows = db.scalars(select(Alert)).all()
    assert len(rows) == 1 and rows[0].count == n


def test_database_refuses_a_second_active_alert_for_the_same_key(
    sessions: sessionmaker[Session],
) -> None:
    from sqlalchemy.exc import IntegrityError

    aid = raise_(sessions, spec()).alert.id
    with sessions() as db, pytest.raises(IntegrityError):
        row = db.get_one(Alert, aid)
        db.add(
            Alert(
                **{c.name: getattr(row, c.key) for c in Alert.__table__.columns if c.name != "id"}
            )
        )
        db.flush()
    with sessions() as db:
        assert db.scalar(select(func.count()).select_from(Alert)) == 1


def test_escalation_tiers_and_whistle_for_unacknowledged_critical(
    sessions: sessionmaker[Session],
) -> None:
    policy = EscalationPolicy(
        tiers=(Tier(after_s=60, channels=("inapp",)), Tier(after_s=120, channels=("ops",))),
        whistle_url="http://127.0.0.1:9/whistle",
    )
    with sessions.begin() as db:
        aid = service.raise_alert(db, spec(), T0, policy=policy).alert.id
        minor = service.raise_alert(
            db, spec(subject="x", severity=Severity.WARNING), T0, policy=policy
        )
    assert minor.alert.next_escalation_at is None
    with sessions.begin() as db:
        assert service.due_escalations(db, T0 + timedelta(seconds=59)) == []
        assert service.due_escalations(db, T0 + timedelta(seconds=60)) == [aid]
        first = service.escalate(db, aid, "system", T0 + timedelta(seconds=60), policy)
    assert first.tier == 1 and first.channels == ("inapp",) and first.whistle
    with sessions.begin() as db:
        assert service.due_escalations(db, T0 + timedelta(seconds=179)) == []
        second = service.escalate(db, aid, "system", T0 + timedelta(seconds=180), policy)
    assert second.channels == ("ops",) and not second.whistle  # whistle blows once
    act(sessions, aid, Transition.ACKNOWLEDGE)
    with sessions() as db:
        assert service.due_escalations(db, T0 + timedelta(days=1)) == []


def test_kpis_mean_time_to_acknowledge_and_resolve(sessions: sessionmaker[Session]) -> None:
    aid = raise_(sessions, spec()).alert.id
    raise_(sessions, spec(subject="other", severity=Severity.MINOR))
    act(sessions, aid, Transition.ACKNOWLEDGE)  # one minute after T0
    with sessions.begin() as db:
        service.transition(db, aid, Transition.RESOLVE, "mgr", T0 + timedelta(minutes=5))
    with sessions() as db:
        k = service.kpis(db, "s1")
    assert k.open_by_severity[Severity.MINOR] == 1 and k.open_by_severity[Severity.CRITICAL] == 0
    assert k.mtta_s == 60.0 and k.mttr_s == 300.0

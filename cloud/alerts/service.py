"""Alert operations on a SQLAlchemy session: raise, clear, transitions, escalation, queries.

Callers own the transaction (``with session.begin():``); every function here only flushes.
All times are passed in (``now``), so the behaviour is deterministic under test.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from cloud.alerts.states import Severity, Status, Transition, next_status
from cloud.alerts.tables import Alert, AlertEvent
from cloud.alerts.views import AlertEventOut, AlertOut, Kpis
from cloud.settings import EscalationPolicy

log = logging.getLogger(__name__)

SYSTEM = "system"
MAX_EVIDENCE = 50


class AlertNotFound(LookupError):
    def __init__(self, alert_id: int) -> None:
        self.alert_id = alert_id
        super().__init__(f"alert {alert_id} not found")


@dataclass(frozen=True, slots=True)
class RaiseSpec:
    """What a rule asks for. ``ts`` is the event time of the trigger."""

    site: str
    rule_id: str
    subject: str
    severity: Severity
    title_en: str
    title_zh: str
    ts: datetime
    gateway: str | None = None
    device: str | None = None
    zone: str | None = None
    building: str | None = None
    evidence: tuple[dict[str, Any], ...] = field(default=())


Outcome = Literal["created", "repeated", "reraised", "reopened"]


@dataclass(frozen=True, slots=True)
class RaiseOutcome:
    alert: AlertOut
    outcome: Outcome

    @property
    def notify(self) -> bool:
        """Whether people should hear about it: new, or back after a human resolved it."""
        return self.outcome in ("created", "reopened")


@dataclass(frozen=True, slots=True)
class Escalation:
    alert: AlertOut
    tier: int
    channels: tuple[str, ...]
    whistle: bool


def active_key(site: str, rule_id: str, subject: str) -> str:
    return f"{site}\x1f{rule_id}\x1f{subject}"


def _event(
    session: Session,
    alert: Alert,
    kind: str,
    actor: str,
    now: datetime,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id,
            ts=now,
            actor=actor,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            note=note,
            detail=detail or {},
        )
    )


def _insert_if_absent(session: Session, values: dict[str, Any]) -> int | None:
    """INSERT … ON CONFLICT (active_key) DO NOTHING; the new id, or None if one was active.

    Atomic on both backends: PostgreSQL waits for a concurrent insert of the same key to commit,
    SQLite serialises writers, so two raisers can never both insert.
    """
    dialect = session.get_bind().dialect.name
    stmt: Any
    if dialect == "postgresql":
        stmt = (
            postgresql.insert(Alert)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["active_key"])
        )
    elif dialect == "sqlite":
        stmt = (
            sqlite.insert(Alert)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["active_key"])
        )
    else:  # pragma: no cover - only the two supported backends
        raise NotImplementedError(f"database {dialect!r} is not supported")
    new_id = session.execute(stmt.returning(Alert.id)).scalar_one_or_none()
    return None if new_id is None else int(new_id)


def _first_escalation(
    severity: Severity, now: datetime, policy: EscalationPolicy | None
) -> datetime | None:
    if policy is None or not policy.tiers or not severity.at_least(policy.min_severity):
        return None
    return now + timedelta(seconds=policy.tiers[0].after_s)


class DrillMode(Protocol):
    """Tells whether a site is running a drill (its alerts are then exercises).

    The risk module registers one at app start (:func:`use_drill_mode`); alerts know nothing
    of drills beyond this question.
    """

    def running(self, session: Session, site: str) -> bool: ...


_drill_mode: DrillMode | None = None


def use_drill_mode(provider: DrillMode | None) -> None:
    """Register who answers :func:`drill_running` (None: no drills, nothing is marked)."""
    global _drill_mode
    _drill_mode = provider


def drill_running(session: Session, site: str) -> bool:
    """Whether a drill is running for ``site`` (asked of the registered :class:`DrillMode`)."""
    return _drill_mode is not None and _drill_mode.running(session, site)


def raise_alert(
    session: Session,
    spec: RaiseSpec,
    now: datetime,
    *,
    policy: EscalationPolicy | None = None,
    flap_window_s: float = 300.0,
) -> RaiseOutcome:
    """Create the (site, rule, subject) alert, or bump the active one's count and last_seen."""
    key = active_key(spec.site, spec.rule_id, spec.subject)
    evidence = list(spec.evidence[-MAX_EVIDENCE:])
    drill = drill_running(session, spec.site)
    for _attempt in range(5):
        new_id = _insert_if_absent(
            session,
            {
                "active_key": key,
                "site": spec.site,
                "rule_id": spec.rule_id,
                "subject": spec.subject,
                "gateway": spec.gateway,
                "device": spec.device,
                "zone": spec.zone,
                "building": spec.building,
                "severity": spec.severity.value,
                "status": Status.OPEN.value,
                "title_en": spec.title_en,
                "title_zh": spec.title_zh,
                "cleared": False,
                "flapping": False,
                "flap_count": 0,
                "count": 1,
                "first_seen": spec.ts,
                "last_seen": spec.ts,
                "raised_at": now,
                "escalation_tier": 0,
                "next_escalation_at": _first_escalation(spec.severity, now, policy),
                "evidence": evidence,
                "drill": drill,
            },
        )
        if new_id is not None:
            alert = session.get_one(Alert, new_id)
            _event(
                session,
                alert,
                "raised",
                f"rule:{spec.rule_id}",
                now,
                to_status=Status.OPEN,
                detail={"ts": spec.ts.isoformat(), "severity": spec.severity.value},
            )
            session.flush()
            return RaiseOutcome(AlertOut.of(alert), "created")
        alert_or_none = session.scalars(
            select(Alert).where(Alert.active_key == key).with_for_update()
        ).one_or_none()
        if alert_or_none is None:
            continue  # closed between our insert and our read: try to insert again
        outcome = _repeat(session, alert_or_none, spec, now, policy, flap_window_s)
        return RaiseOutcome(AlertOut.of(alert_or_none), outcome)
    raise RuntimeError(f"alert {key!r}: could not settle after concurrent closes")


def _repeat(
    session: Session,
    alert: Alert,
    spec: RaiseSpec,
    now: datetime,
    policy: EscalationPolicy | None,
    flap_window_s: float,
) -> Outcome:
    alert.count += 1
    alert.last_seen = max(alert.last_seen, spec.ts)
    outcome: Outcome = "repeated"
    if alert.cleared:
        outcome = "reraised"
        alert.cleared = False
        alert.flap_count += 1
        if (
            alert.cleared_at is not None
            and (spec.ts - alert.cleared_at).total_seconds() < flap_window_s
        ):
            alert.flapping = True
        if len(alert.evidence) < MAX_EVIDENCE:
            alert.evidence = [*alert.evidence, *spec.evidence][:MAX_EVIDENCE]
    if Severity(spec.severity).rank < Severity(alert.severity).rank:
        _event(
            session,
            alert,
            "severity",
            f"rule:{spec.rule_id}",
            now,
            detail={"from": alert.severity, "to": spec.severity.value},
        )
        alert.severity = spec.severity.value
    if alert.status == Status.RESOLVED:
        outcome = "reopened"
        alert.status = Status.OPEN.value
        alert.resolved_at = None
        alert.resolved_by = None
        alert.acknowledged_at = None
        alert.acknowledged_by = None
        alert.escalation_tier = 0
        alert.next_escalation_at = _first_escalation(Severity(alert.severity), now, policy)
        _event(
            session,
            alert,
            "reopened",
            f"rule:{spec.rule_id}",
            now,
            from_status=Status.RESOLVED,
            to_status=Status.OPEN,
            detail={"ts": spec.ts.isoformat()},
        )
    elif outcome == "reraised":
        _event(
            session,
            alert,
            "reraised",
            f"rule:{spec.rule_id}",
            now,
            detail={"ts": spec.ts.isoformat(), "flapping": alert.flapping},
        )
    session.flush()
    return outcome


def clear_alert(
    session: Session, site: str, rule_id: str, subject: str, ts: datetime, now: datetime
) -> AlertOut | None:
    """Mark the condition cleared (not resolved). None if no active alert or already cleared."""
    alert = session.scalars(
        select(Alert)
        .where(Alert.active_key == active_key(site, rule_id, subject))
        .with_for_update()
    ).one_or_none()
    if alert is None or alert.cleared:
        return None
    alert.cleared = True
    alert.cleared_at = ts
    _event(session, alert, "cleared", f"rule:{rule_id}", now, detail={"ts": ts.isoformat()})
    session.flush()
    return AlertOut.of(alert)


def _locked(session: Session, alert_id: int) -> Alert:
    alert = session.scalars(
        select(Alert).where(Alert.id == alert_id).with_for_update()
    ).one_or_none()
    if alert is None:
        raise AlertNotFound(alert_id)
    return alert


def transition(
    session: Session,
    alert_id: int,
    action: Transition,
    actor: str,
    now: datetime,
    *,
    note: str | None = None,
    assignee: str | None = None,
) -> AlertOut:
    """Apply a person's action; :class:`IllegalTransition` if the status forbids it."""
    if action is Transition.ESCALATE:
        raise ValueError("use escalate() for escalation")
    alert = _locked(session, alert_id)
    before = Status(alert.status)
    after = next_status(alert_id, before, action)
    detail: dict[str, Any] = {}
    if action is Transition.ACKNOWLEDGE:
        alert.acknowledged_at, alert.acknowledged_by = now, actor
        alert.next_escalation_at = None
    elif action is Transition.ASSIGN:
        if not assignee:
            raise ValueError("assign needs an assignee")
        detail = {"from": alert.assignee, "to": assignee}
        alert.assignee = assignee
    elif action is Transition.START:
        alert.assignee = assignee or alert.assignee or actor
        alert.started_at = now
        detail = {"assignee": alert.assignee}
    elif action is Transition.RESOLVE:
        alert.resolved_at, alert.resolved_by = now, actor
        alert.next_escalation_at = None
    elif action is Transition.CLOSE:
        alert.closed_at, alert.closed_by = now, actor
        alert.active_key = None  # frees the (rule, subject) slot for a future alert
    elif action is Transition.COMMENT and not note:
        raise ValueError("a comment needs text")
    alert.status = after.value
    _event(
        session,
        alert,
        action.value if action is not Transition.COMMENT else "comment",
        actor,
        now,
        from_status=before if after is not before else None,
        to_status=after if after is not before else None,
        note=note,
        detail=detail,
    )
    session.flush()
    return AlertOut.of(alert)


def escalate(
    session: Session,
    alert_id: int,
    actor: str,
    now: datetime,
    policy: EscalationPolicy,
    *,
    note: str | None = None,
) -> Escalation:
    """Move the alert to its next tier; returns the channels to notify and whether to whistle."""
    alert = _locked(session, alert_id)
    next_status(alert_id, Status(alert.status), Transition.ESCALATE)
    tiers = policy.tiers
    index = min(alert.escalation_tier, len(tiers) - 1) if tiers else -1
    channels = tiers[index].channels if index >= 0 else ()
    alert.escalation_tier += 1
    following = alert.escalation_tier
    alert.next_escalation_at = (
        now + timedelta(seconds=tiers[following].after_s)
        if following < len(tiers) and alert.status == Status.OPEN
        else None
    )
    whistle = (
        alert.severity == Severity.CRITICAL
        and policy.whistle_url is not None
        and alert.whistled_at is None
    )
    if whistle:
        alert.whistled_at = now
    _event(
        session,
        alert,
        "escalated",
        actor,
        now,
        note=note,
        detail={
            "tier": alert.escalation_tier,
            "label": tiers[index].label if index >= 0 else "",
            "channels": list(channels),
            "whistle": whistle,
        },
    )
    session.flush()
    return Escalation(AlertOut.of(alert), alert.escalation_tier, channels, whistle)


def due_escalations(session: Session, now: datetime) -> list[int]:
    """Ids of OPEN (unacknowledged) alerts whose escalation time has come."""
    rows = session.scalars(
        select(Alert.id)
        .where(Alert.status == Status.OPEN.value)
        .where(Alert.next_escalation_at.is_not(None))
        .where(Alert.next_escalation_at <= now)
        .order_by(Alert.next_escalation_at)
    )
    return list(rows)


def record(
    session: Session,
    alert_id: int,
    kind: str,
    actor: str,
    now: datetime,
    *,
    note: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add a timeline line that is not a transition (e.g. a notification's delivery)."""
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    _event(session, alert, kind, actor, now, note=note, detail=detail)
    session.flush()


def get_alert(session: Session, alert_id: int) -> AlertOut:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    return AlertOut.of(alert)


def timeline(session: Session, alert_id: int) -> list[AlertEventOut]:
    get_alert(session, alert_id)
    rows = session.scalars(
        select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
    )
    return [AlertEventOut.of(r) for r in rows]


@dataclass(frozen=True, slots=True)
class AlertFilter:
    site: str | None = None
    status: Sequence[Status] = ()
    severity: Sequence[Severity] = ()
    rule_id: str | None = None
    subject: str | None = None
    active: bool | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 100
    offset: int = 0


def list_alerts(session: Session, flt: AlertFilter) -> list[AlertOut]:
    query = select(Alert)
    if flt.site:
        query = query.where(Alert.site == flt.site)
    if flt.status:
        query = query.where(Alert.status.in_([s.value for s in flt.status]))
    if flt.severity:
        query = query.where(Alert.severity.in_([s.value for s in flt.severity]))
    if flt.rule_id:
        query = query.where(Alert.rule_id == flt.rule_id)
    if flt.subject:
        query = query.where(Alert.subject == flt.subject)
    if flt.active is True:
        query = query.where(Alert.active_key.is_not(None))
    elif flt.active is False:
        query = query.where(Alert.active_key.is_(None))
    if flt.since:
        query = query.where(Alert.raised_at >= flt.since)
    if flt.until:
        query = query.where(Alert.raised_at < flt.until)
    query = query.order_by(Alert.raised_at.desc(), Alert.id.desc())
    rows = session.scalars(query.limit(flt.limit).offset(flt.offset))
    return [AlertOut.of(r) for r in rows]


def kpis(session: Session, site: str | None = None, since: datetime | None = None) -> Kpis:
    """Open alerts by severity, mean time to acknowledge and to resolve (seconds)."""
    open_q = select(Alert.severity, func.count()).where(
        Alert.status.in_([s.value for s in Status if s.unresolved])
    )
    times_q = select(Alert.raised_at, Alert.acknowledged_at, Alert.resolved_at)
    if site:
        open_q = open_q.where(Alert.site == site)
        times_q = times_q.where(Alert.site == site)
    if since:
        times_q = times_q.where(Alert.raised_at >= since)
    counts = {Severity(sev): int(n) for sev, n in session.execute(open_q.group_by(Alert.severity))}
    tta: list[float] = []
    ttr: list[float] = []
    for raised, acked, resolved in session.execute(times_q):
        if acked is not None:
            tta.append((acked - raised).total_seconds())
        if resolved is not None:
            ttr.append((resolved - raised).total_seconds())
    return Kpis(
        open_by_severity={s: counts.get(s, 0) for s in Severity},
        active_total=sum(counts.values()),
        mtta_s=sum(tta) / len(tta) if tta else None,
        mttr_s=sum(ttr) / len(ttr) if ttr else None,
        acknowledged_count=len(tta),
        resolved_count=len(ttr),
    )

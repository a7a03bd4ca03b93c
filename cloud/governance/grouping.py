"""Alert grouping: a serious alert joins the open incident of its site and zone, or opens one.

:func:`on_alert_raised` is called by the rules' effects (cloud/rules/effects.py) in the
transaction that raised the alert, inside a savepoint: whatever goes wrong here is logged and
rolled back alone, and the alert is raised all the same.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alerts.states import Severity
from cloud.alerts.views import AlertOut
from cloud.governance.incidents import link_alerts, open_incident
from cloud.governance.journal import SYSTEM
from cloud.governance.states import State
from cloud.governance.tables import Incident

log = logging.getLogger(__name__)

CATEGORY = "safety_alert"
GROUP_WINDOW_S = 600.0


def group(
    db: Session,
    alert: AlertOut,
    *,
    window_s: float = GROUP_WINDOW_S,
    min_severity: Severity = Severity.MAJOR,
    now: datetime | None = None,
) -> int | None:
    """The incident the alert now belongs to (None: not serious enough to group)."""
    if not Severity(alert.severity).at_least(min_severity):
        return None
    now = now or datetime.now(UTC)
    drill = bool(getattr(alert, "drill", False))
    zone = Incident.zone.is_(None) if alert.zone is None else Incident.zone == alert.zone
    found = db.scalar(
        select(Incident)
        .where(
            Incident.site == alert.site,
            zone,
            Incident.drill == drill,
            Incident.state.in_([s.value for s in State if s.unresolved]),
            Incident.created_at >= now - timedelta(seconds=window_s),
        )
        .order_by(Incident.created_at.desc(), Incident.id.desc())
        .limit(1)
    )
    if found is not None:
        link_alerts(db, found.id, [alert.id], SYSTEM, now)
        if Severity(alert.severity).rank < Severity(found.severity).rank:
            found.severity = alert.severity.value
        return found.id
    return open_incident(
        db,
        site=alert.site,
        title=f"{alert.title_zh} / {alert.title_en}"[:200],
        category=CATEGORY,
        source="alert",
        actor=SYSTEM,
        building=alert.building,
        zone=alert.zone,
        severity=alert.severity.value,
        drill=drill,
        alert_ids=[alert.id],
        now=now,
    )


def on_alert_raised(
    db: Session,
    alert: AlertOut,
    *,
    window_s: float = GROUP_WINDOW_S,
    min_severity: Severity = Severity.MAJOR,
    now: datetime | None = None,
) -> int | None:
    """:func:`group` in a savepoint; never raises (an alert must be raised whatever happens
    to governance). Returns the incident id, None when not grouped or on failure."""
    try:
        with db.begin_nested():
            return group(db, alert, window_s=window_s, min_severity=min_severity, now=now)
    except Exception:  # a boundary between areas: governance must not break alert raising
        log.exception("alert %s: grouping into an incident failed", alert.id)
        return None

"""Read what an after-action report covers from the database (see :mod:`cloud.risk.report`).

* an incident: its grouped alerts, their commands, the incident with its timeline and whistles;
* a drill: the alerts marked ``drill`` raised for its site while it ran, their commands, and the
  incidents those alerts were grouped into (plus the site's drill incidents of that window).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alerts import service as alerts
from cloud.alerts.tables import Alert
from cloud.alerts.views import AlertOut
from cloud.commands.service import CommandOut
from cloud.commands.tables import CommandRow
from cloud.governance import incidents
from cloud.governance.errors import NotFound
from cloud.governance.tables import Incident, IncidentAlert
from cloud.risk.report import ReportInput
from cloud.risk.tables import Drill


def _commands(db: Session, alert_ids: list[int]) -> list[CommandOut]:
    if not alert_ids:
        return []
    rows = db.scalars(
        select(CommandRow).where(CommandRow.alert_id.in_(alert_ids)).order_by(CommandRow.id)
    )
    return [CommandOut.model_validate(r) for r in rows]


def _alerts(db: Session, alert_ids: list[int]) -> list[AlertOut]:
    rows = db.scalars(select(Alert).where(Alert.id.in_(alert_ids)).order_by(Alert.id))
    return [AlertOut.of(r) for r in rows]


def incident_input(db: Session, incident_id: int, now: datetime) -> ReportInput:
    inc = incidents.detail(db, incident_id, now=now)
    found = _alerts(db, inc.alert_ids)
    ids = [a.id for a in found]
    return ReportInput(
        kind="incident",
        ident=inc.id,
        title=inc.title,
        site=inc.site,
        drill=inc.drill,
        started_at=inc.created_at,
        ended_at=inc.closed_at or inc.resolved_at or inc.cancelled_at,
        alerts=found,
        alert_events={a: alerts.timeline(db, a) for a in ids},
        commands=_commands(db, ids),
        incidents=[inc],
    )


def get_drill(db: Session, drill_id: int) -> Drill:
    row = db.get(Drill, drill_id)
    if row is None:
        raise NotFound("drill", drill_id)
    return row


def drill_alert_ids(db: Session, drill: Drill, now: datetime) -> list[int]:
    """The drill-marked alerts of the drill's site raised while it ran."""
    if drill.started_at is None:
        return []
    query = select(Alert.id).where(
        Alert.site == drill.site, Alert.drill.is_(True), Alert.raised_at >= drill.started_at
    )
    query = query.where(Alert.raised_at <= (drill.finished_at or now))
    return list(db.scalars(query.order_by(Alert.id)))


def drill_input(db: Session, drill_id: int, now: datetime) -> ReportInput:
    drill = get_drill(db, drill_id)
    ids = drill_alert_ids(db, drill, now)
    grouped = set(
        db.scalars(select(IncidentAlert.incident_id).where(IncidentAlert.alert_id.in_(ids)))
    )
    if drill.started_at is not None:
        grouped |= set(
            db.scalars(
                select(Incident.id).where(
                    Incident.site == drill.site,
                    Incident.drill.is_(True),
                    Incident.created_at >= drill.started_at,
                    Incident.created_at <= (drill.finished_at or now),
                )
            )
        )
    expected = drill.check.get("expected", []) if drill.check else []
    return ReportInput(
        kind="drill",
        ident=drill.id,
        title=f"{drill.scenario} @ {drill.site}",
        site=drill.site,
        drill=True,
        scenario=drill.scenario,
        participants=list(drill.participants),
        started_at=drill.started_at,
        ended_at=drill.finished_at,
        alerts=_alerts(db, ids),
        alert_events={a: alerts.timeline(db, a) for a in ids},
        commands=_commands(db, ids),
        incidents=[incidents.detail(db, i, now=now) for i in sorted(grouped)],
        expectations=list(expected),
    )

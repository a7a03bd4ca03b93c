"""The incident timeline: every action, with who did it, when, and its details."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.governance.live import touched
from cloud.governance.tables import IncidentEvent

SYSTEM = "system"
"""Actor of what Linli does by itself (deadline loop, alert grouping)."""


def record(
    db: Session,
    incident_id: int,
    actor: str,
    action: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add a timeline line (flushed with the caller's transaction, not committed); the live
    stream hears of the change when that transaction commits (:mod:`cloud.governance.live`)."""
    db.add(
        IncidentEvent(
            incident_id=incident_id, ts=now, actor=actor, action=action, detail=dict(detail or {})
        )
    )
    db.flush()
    touched(db, incident_id, action)


def timeline(db: Session, incident_id: int) -> list[dict[str, Any]]:
    """``[{ts, actor, action, detail}]``, oldest first (insertion order breaks ties)."""
    rows = db.scalars(
        select(IncidentEvent)
        .where(IncidentEvent.incident_id == incident_id)
        .order_by(IncidentEvent.ts, IncidentEvent.id)
    )
    return [{"ts": r.ts, "actor": r.actor, "action": r.action, "detail": r.detail} for r in rows]

"""The live-stream events of rows another process stored: an access event, an in-app notice.

:mod:`cloud.notify.follow` rebuilds with these what a ``--role rules`` process published on its
own hub; the rules runner publishes its access events with :func:`access_event` too, so both
sides send the same shape.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from cloud.alerts.tables import Alert, Notification
from cloud.notify.channels import Notice
from cloud.notify.dispatcher import PERSONAL
from cloud.storage.tables import AccessEventRow
from protocols.messages import AccessEvent

log = logging.getLogger(__name__)


def access_event_of(row: AccessEventRow, boot_id: str, seq: int) -> dict[str, Any] | None:
    """The live event of a stored access event (as the rules runner publishes it)."""
    fields = {
        name: getattr(row, name)
        for name in AccessEvent.model_fields
        if name not in ("v", "boot_id", "seq") and hasattr(row, name)
    }
    try:
        message = AccessEvent.model_validate({**fields, "boot_id": boot_id, "seq": seq})
    except ValidationError as exc:
        log.warning("access event %s not rebuilt: %s", row.msg_id, exc)
        return None
    return access_event(row.site, row.gateway, message)


def access_event(site: str, gateway: str, message: AccessEvent) -> dict[str, Any]:
    """The live-stream form of an access event."""
    body = message.model_dump(mode="json", exclude_none=True)
    return {"type": "access", "site": site, "gateway": gateway, "event": body}


def notification_event(db: Session, rows: list[Notification]) -> dict[str, Any]:
    """The live event of one notice stored for several recipients, as the stored rows (and
    the alert they are about, as it is now) say it: the screens reload their list on it."""
    row = rows[0]
    alert = db.get(Alert, row.alert_id) if row.alert_id is not None else None
    notice = Notice(
        kind=row.reason,
        alert_id=row.alert_id,
        site=alert.site if alert else "",
        rule_id=alert.rule_id if alert else "",
        subject=alert.subject if alert else "",
        severity=row.severity,
        status=alert.status if alert else "",
        title_en=row.title_en,
        title_zh=row.title_zh,
        tier=alert.escalation_tier if alert else 0,
        zone=alert.zone if alert else None,
        building=alert.building if alert else None,
        ts=row.ts.isoformat(),
        drill=bool(alert and alert.drill) or row.reason == "drill",
    )
    audience: dict[str, Any] = {"roles": [r.role for r in rows]}
    if row.role == PERSONAL:
        audience = {"roles": [], "users": [r.username for r in rows]}
    return {"type": "notification", **audience, "notice": notice.model_dump(mode="json")}

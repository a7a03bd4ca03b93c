"""Who may see and work an incident, beyond the route's role check.

* managers and admins: everything; guards and viewers: see everything, work what their
  organisations were given;
* responders: see incidents dispatched or whistled to their organisations (or assigned to
  them), and work those;
* residents: see and act only on their own reports.

An incident one may not see answers 404 (its existence is not disclosed); one that is visible
but not one's to work answers 403.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.models import Principal, Role
from cloud.governance.errors import NotFound, Refused
from cloud.governance.orgs import is_member, orgs_of
from cloud.governance.tables import Incident, Whistle

SEE_ALL = frozenset({Role.ADMIN, Role.MANAGER, Role.GUARD, Role.VIEWER})


def is_manager(who: Principal) -> bool:
    return who.role in (Role.ADMIN, Role.MANAGER)


def _whistled_to(db: Session, incident_id: int, orgs: list[int]) -> bool:
    if not orgs:
        return False
    found = db.scalar(
        select(Whistle.id).where(Whistle.incident_id == incident_id, Whistle.org_id.in_(orgs))
    )
    return found is not None


def can_see(db: Session, row: Incident, who: Principal) -> bool:
    if who.role in SEE_ALL:
        return True
    if who.role is Role.RESIDENT:
        return row.reporter == who.username
    if row.assignee == who.username:
        return True
    orgs = orgs_of(db, who.username)
    return row.org_id in orgs or _whistled_to(db, row.id, orgs)


def check_visible(db: Session, row: Incident, who: Principal) -> None:
    if not can_see(db, row, who):
        raise NotFound("incident", row.id)


def check_worker(db: Session, row: Incident, who: Principal) -> None:
    """Accept, arrive, resolve: a manager, the assignee, or a member of the incident's org."""
    check_visible(db, row, who)
    if is_manager(who) or row.assignee == who.username:
        return
    if row.org_id is not None and is_member(db, row.org_id, who.username):
        return
    raise Refused(
        f"incident {row.id} is not dispatched to an organisation {who.username} belongs to"
    )


def check_reporter_or_manager(db: Session, row: Incident, who: Principal) -> None:
    check_visible(db, row, who)
    if not is_manager(who) and row.reporter != who.username:
        raise Refused(f"only the reporter of incident {row.id} or a manager may do this")


def check_department(db: Session, whistle: Whistle, who: Principal) -> None:
    """Whistle reports: a member of the summoned department, or a manager on its behalf."""
    if is_manager(who) or is_member(db, whistle.org_id, who.username):
        return
    raise Refused(f"{who.username} is not a member of organisation {whistle.org_id}")


def visible_orgs(db: Session, who: Principal) -> tuple[int, ...] | None:
    """For list filters: None = no restriction, else the orgs whose incidents are visible."""
    if who.role in SEE_ALL or who.role is Role.RESIDENT:
        return None
    return tuple(orgs_of(db, who.username))

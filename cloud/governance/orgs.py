"""Organisations, their members, and who serves which building."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.governance.errors import Invalid, NotFound
from cloud.governance.models import MemberIn, OrgIn, OrgOut, OrgPatch, StageDeadlines
from cloud.governance.tables import Organisation, OrgMember


def org_out(row: Organisation) -> OrgOut:
    return OrgOut(
        id=row.id,
        name=row.name,
        name_en=row.name_en,
        kind=row.kind,
        phone=row.phone,
        site=row.site,
        buildings=list(row.buildings or ()),
        zones=list(row.zones or ()),
        department=row.department,
        deadlines=StageDeadlines.model_validate(row.deadlines or {}),
        created_at=row.created_at,
    )


def _check_department(kind: str, department: str | None) -> None:
    if department is not None and kind != "department":
        raise Invalid("department", f"only organisations of kind department have one, not {kind}")


def create_org(db: Session, body: OrgIn, *, now: datetime | None = None) -> Organisation:
    _check_department(body.kind, body.department)
    row = Organisation(
        name=body.name,
        name_en=body.name_en,
        kind=body.kind,
        phone=body.phone,
        site=body.site,
        buildings=sorted(set(body.buildings)),
        zones=sorted(set(body.zones)),
        department=body.department,
        deadlines=(body.deadlines or StageDeadlines()).model_dump(),
        created_at=now or datetime.now(UTC),
    )
    db.add(row)
    db.flush()
    return row


def get_org(db: Session, org_id: int, *, field: str | None = None) -> Organisation:
    """The organisation, else :class:`NotFound` (or :class:`Invalid` naming ``field`` when the
    id came in a request body)."""
    row = db.get(Organisation, org_id)
    if row is None:
        if field is not None:
            raise Invalid(field, f"no organisation {org_id}")
        raise NotFound("organisation", org_id)
    return row


def patch_org(db: Session, org_id: int, body: OrgPatch) -> Organisation:
    row = get_org(db, org_id)
    changes = body.model_dump(exclude_unset=True)
    _check_department(row.kind, changes.get("department", row.department))
    for name, value in changes.items():
        if name in ("buildings", "zones") and value is not None:
            value = sorted(set(value))
        if name == "deadlines":
            value = (body.deadlines or StageDeadlines()).model_dump()
        setattr(row, name, value)
    db.flush()
    return row


def list_orgs(db: Session, *, site: str | None = None, kind: str | None = None) -> list[OrgOut]:
    query = select(Organisation).order_by(Organisation.id)
    if site is not None:
        query = query.where(Organisation.site == site)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    return [org_out(r) for r in db.scalars(query)]


def add_member(db: Session, org_id: int, body: MemberIn) -> OrgMember:
    """Add (or update: role, name, phone) a member of an organisation."""
    get_org(db, org_id)
    row = db.scalar(
        select(OrgMember).where(OrgMember.org_id == org_id, OrgMember.username == body.username)
    )
    if row is None:
        row = OrgMember(org_id=org_id, username=body.username)
        db.add(row)
    row.role = body.role
    row.name = body.name
    row.phone = body.phone
    db.flush()
    return row


def members(db: Session, org_id: int, *, role: str | None = None) -> list[OrgMember]:
    query = select(OrgMember).where(OrgMember.org_id == org_id).order_by(OrgMember.id)
    if role is not None:
        query = query.where(OrgMember.role == role)
    return list(db.scalars(query))


def is_member(db: Session, org_id: int, username: str) -> bool:
    return (
        db.scalar(
            select(OrgMember.id).where(OrgMember.org_id == org_id, OrgMember.username == username)
        )
        is not None
    )


def orgs_of(db: Session, username: str) -> list[int]:
    """The organisations ``username`` belongs to."""
    return list(db.scalars(select(OrgMember.org_id).where(OrgMember.username == username)))


def _serves(row: Organisation, building: str | None, zone: str | None) -> int | None:
    """How specifically ``row`` serves the place: 2 = named building/zone, 1 = the whole site
    (no buildings or zones listed), None = not at all."""
    places = set(row.buildings or ()) | set(row.zones or ())
    if not places:
        return 1
    if (building is not None and building in places) or (zone is not None and zone in places):
        return 2
    return None


def orgs_serving(
    db: Session,
    site: str,
    building: str | None,
    kinds: Iterable[str],
    *,
    zone: str | None = None,
    department: str | None = None,
) -> list[int]:
    """Ids of the organisations of ``kinds`` serving ``building`` (or ``zone``) of ``site``,
    most specific first (those naming the building before site-wide ones), then oldest first."""
    query = select(Organisation).where(
        Organisation.site == site, Organisation.kind.in_(list(kinds))
    )
    if department is not None:
        query = query.where(Organisation.department == department)
    ranked = []
    for row in db.scalars(query.order_by(Organisation.id)):
        rank = _serves(row, building, zone)
        if rank is not None:
            ranked.append((-rank, row.id))
    return [org_id for _, org_id in sorted(ranked)]

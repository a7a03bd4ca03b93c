"""Routes: organisations, their members, the service catalogue."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api.params import RowId
from cloud.auth import audit
from cloud.auth.deps import DbSession
from cloud.governance import catalogue, orgs
from cloud.governance.models import (
    CatalogueIn,
    CatalogueOut,
    CataloguePatch,
    MemberIn,
    MemberOut,
    OrgIn,
    OrgKind,
    OrgOut,
    OrgPatch,
)
from cloud.governance.web import AnyUser, Manager, Now, Worker, http_errors

router = APIRouter(prefix="/api/gov", tags=["governance"])


@router.get("/organisations", summary="Organisations (optionally of one site or kind)")
def list_orgs(
    who: AnyUser, db: DbSession, site: str | None = None, kind: OrgKind | None = None
) -> list[OrgOut]:
    return orgs.list_orgs(db, site=site, kind=kind)


@router.post("/organisations", status_code=201, summary="Add an organisation")
def create_org(body: OrgIn, who: Manager, db: DbSession, now: Now) -> OrgOut:
    with http_errors(db):
        row = orgs.create_org(db, body, now=now)
        audit.record(db, who, "gov.org.create", f"org:{row.id}", {"name": row.name})
        db.commit()
    return orgs.org_out(row)


@router.get("/organisations/{org_id}", summary="One organisation")
def get_org(org_id: RowId, who: AnyUser, db: DbSession) -> OrgOut:
    with http_errors(db):
        return orgs.org_out(orgs.get_org(db, org_id))


@router.patch("/organisations/{org_id}", summary="Change an organisation")
def patch_org(org_id: RowId, body: OrgPatch, who: Manager, db: DbSession) -> OrgOut:
    with http_errors(db):
        row = orgs.patch_org(db, org_id, body)
        audit.record(db, who, "gov.org.update", f"org:{org_id}",
                     body.model_dump(mode="json", exclude_unset=True))  # fmt: skip
        db.commit()
    return orgs.org_out(row)


@router.post("/organisations/{org_id}/members", status_code=201, summary="Add or update a member")
def add_member(org_id: RowId, body: MemberIn, who: Manager, db: DbSession) -> MemberOut:
    with http_errors(db):
        row = orgs.add_member(db, org_id, body)
        audit.record(db, who, "gov.org.member", f"org:{org_id}",
                     {"username": body.username, "role": body.role})  # fmt: skip
        db.commit()
    return MemberOut.model_validate(row)


@router.get("/organisations/{org_id}/members", summary="Members (staff only: phones)")
def list_members(org_id: RowId, who: Worker, db: DbSession) -> list[MemberOut]:
    with http_errors(db):
        orgs.get_org(db, org_id)
        return [MemberOut.model_validate(m) for m in orgs.members(db, org_id)]


@router.get("/catalogue", summary="The service catalogue (seeded with defaults)")
def list_catalogue(who: AnyUser, db: DbSession) -> list[CatalogueOut]:
    items = catalogue.list_items(db)
    db.commit()  # the first read seeds the defaults
    return items


@router.post("/catalogue", status_code=201, summary="Add a service category")
def create_item(body: CatalogueIn, who: Manager, db: DbSession) -> CatalogueOut:
    with http_errors(db):
        row = catalogue.create(db, body)
        audit.record(db, who, "gov.catalogue.create", f"catalogue:{row.category}")
        db.commit()
    return CatalogueOut.model_validate(row)


@router.patch("/catalogue/{item_id}", summary="Change a service category")
def patch_item(item_id: RowId, body: CataloguePatch, who: Manager, db: DbSession) -> CatalogueOut:
    with http_errors(db):
        row = catalogue.patch(db, item_id, body)
        audit.record(db, who, "gov.catalogue.update", f"catalogue:{row.category}",
                     body.model_dump(mode="json", exclude_unset=True))  # fmt: skip
        db.commit()
    return CatalogueOut.model_validate(row)

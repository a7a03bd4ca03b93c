"""Governance tests: a fresh schema per test on SQLite and PostgreSQL (``db_url``), and a few
organisations of one site."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from cloud.governance import orgs
from cloud.governance.models import MemberIn, OrgIn
from tests.cloud.alerts.conftest import engine, sessions

__all__ = ["engine", "sessions"]  # a fresh schema per test, SQLite and PostgreSQL

SITE = "gov-site"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(64) + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)


@dataclass(frozen=True)
class Orgs:
    property: int
    committee: int
    grid_b1: int
    fire: int
    utilities: int


def make_orgs(db: Session, site: str = SITE) -> Orgs:
    """Property (whole site), committee, a grid for b1, fire and utilities departments; with
    members pm1 (property), lead1 (committee lead), fire1, util1."""

    def org(name: str, kind: str, **kw: object) -> int:
        return orgs.create_org(db, OrgIn.model_validate({"name": name, "kind": kind, "site": site,
                                                         **kw})).id  # fmt: skip

    made = Orgs(
        property=org("物业公司", "property"),
        committee=org("居委会", "committee"),
        grid_b1=org("一号楼网格", "grid", buildings=["b1"]),
        fire=org("消防救援站", "department", department="fire"),
        utilities=org("自来水公司", "department", department="utilities",
                      deadlines={"ack_s": 600, "arrive_s": 1800, "resolve_s": 7200}),
    )  # fmt: skip
    orgs.add_member(db, made.property, MemberIn(username="pm1"))
    orgs.add_member(db, made.committee, MemberIn(username="lead1", role="lead"))
    orgs.add_member(db, made.fire, MemberIn(username="fire1"))
    orgs.add_member(db, made.utilities, MemberIn(username="util1"))
    return made

"""Governance tests: a fresh schema per test on SQLite and PostgreSQL (``db_url``), and a few
organisations of one site."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cloud.auth import service as accounts
from cloud.auth.deps import Role
from cloud.governance import orgs
from cloud.governance.deadlines import DeadlineLoop, Due
from cloud.governance.models import MemberIn, OrgIn
from tests.cloud.alerts.conftest import sessions
from tests.cloud.api.conftest import PASSWORD, Cloud, make_cloud

# a fresh schema per test (SQLite and PostgreSQL: tests/cloud/conftest.py); the real app on it
__all__ = ["make_cloud", "sessions"]

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


class FakeClock:
    """The governance clock of the app (``app.state.gov_clock``) and of the deadline loop."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@dataclass
class GovApp:
    """The real cloud app with a fake governance clock; users beyond one per role."""

    cloud: Cloud
    clock: FakeClock
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> TestClient:
        return self.cloud.client

    def user(self, username: str, role: Role) -> None:
        with Session(self.cloud.app.state.engine) as db:
            user = accounts.create_user(db, username, PASSWORD, role)
            self.tokens[username], _ = accounts.issue_token(db, user, 3600)
            db.commit()

    def login(self, username: str, role: Role) -> None:
        """Create the account, then sign in through the API like a browser would."""
        with Session(self.cloud.app.state.engine) as db:
            accounts.create_user(db, username, PASSWORD, role)
            db.commit()
        answer = self.client.post(
            "/api/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert answer.status_code == 200, answer.text
        self.tokens[username] = answer.json()["token"]

    def headers(self, who: str | Role) -> dict[str, str]:
        if isinstance(who, Role):
            return self.cloud.auth(who)
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def call(self, method: str, url: str, who: str | Role, expect: int = 200,
             **kw: Any) -> Any:  # fmt: skip
        answer = self.client.request(method, url, headers=self.headers(who), **kw)
        assert answer.status_code == expect, (method, url, answer.status_code, answer.text)
        return answer.json() if answer.content else None

    def property_and_fire(self, site: str, **property_fields: Any) -> tuple[Any, Any]:
        """The site's property company (member ``pm1``) and fire station (member ``fire1``),
        created through the API by the manager; the members' accounts must exist."""
        m = Role.MANAGER
        prop = self.call("POST", "/api/gov/organisations", m, 201,
                         json={"name": "物业", "kind": "property", "site": site,
                               **property_fields})  # fmt: skip
        fire = self.call("POST", "/api/gov/organisations", m, 201,
                         json={"name": "消防站", "kind": "department", "department": "fire",
                               "site": site})  # fmt: skip
        for org, member in ((prop, "pm1"), (fire, "fire1")):
            self.call("POST", f"/api/gov/organisations/{org['id']}/members", m, 201,
                      json={"username": member})  # fmt: skip
        return prop, fire

    def step(self) -> list[Due]:
        """One pass of the deadline loop at the fake clock's time."""
        loop: DeadlineLoop = self.cloud.app.state.gov_deadlines
        return loop.step(self.clock())


@pytest.fixture
def gov_app(make_cloud: Callable[..., Cloud]) -> GovApp:
    """The app with its own deadline loop idle (a pass only when the test calls ``step``)."""
    cloud = make_cloud(gov_tick_s=3600.0, gov_remind_every_s=900.0)
    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    cloud.app.state.gov_clock = clock
    return GovApp(cloud, clock)

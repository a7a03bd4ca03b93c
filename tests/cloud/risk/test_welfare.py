"""Welfare checks: the pure decision at its boundaries, then the pass over a real database
(SQLite and PostgreSQL): one open incident per resident, grid worker else volunteers, activity
resuming leaves the incident to a person."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.api import create_app
from cloud.governance import incidents, orgs
from cloud.governance.models import OrgIn
from cloud.governance.states import Action, State
from cloud.risk.runtime import RiskConfig
from cloud.risk.tables import Resident, WelfareCheck
from cloud.risk.welfare import WelfareSubject, due_welfare, last_activity, run_welfare
from cloud.settings import Settings
from cloud.storage.series import reading_row
from cloud.storage.tables import DeviceEventRow
from tests.cloud.governance.conftest import make_orgs

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
SITE = "gov-site"


def subject(rid: int = 1, *, alone: bool = True, devices: tuple[str, ...] = ("pir-1",),
            hours: float = 24, since: datetime = T0) -> WelfareSubject:  # fmt: skip
    return WelfareSubject(rid, SITE, alone, devices, timedelta(hours=hours), since)


def test_due_exactly_at_the_threshold_not_a_second_before() -> None:
    seen = {1: T0 + timedelta(hours=1)}
    at = T0 + timedelta(hours=25)
    assert due_welfare([subject()], seen, at) == [subject()]
    assert due_welfare([subject()], seen, at - timedelta(seconds=1)) == []


def test_due_only_for_residents_living_alone_with_devices_and_no_open_check() -> None:
    at = T0 + timedelta(hours=48)
    people = [subject(1), subject(2, alone=False), subject(3, devices=()), subject(4)]
    due = due_welfare(people, {}, at, open_checks={4})
    assert [p.resident_id for p in due] == [1]


def test_silence_counts_from_registration_or_the_last_check_not_before() -> None:
    registered = T0 + timedelta(hours=10)
    person = subject(since=registered, hours=12)
    old_activity = {1: T0}  # before registration: silence starts at registration
    assert due_welfare([person], old_activity, registered + timedelta(hours=11)) == []
    assert due_welfare([person], old_activity, registered + timedelta(hours=12)) == [person]
    assert due_welfare([person], {}, registered + timedelta(hours=12)) == [person]
    newer = {1: registered + timedelta(hours=5)}
    assert due_welfare([person], newer, registered + timedelta(hours=12)) == []


def _reading(db: Session, device: str, value: float, ts: datetime, metric: str = "motion") -> None:
    db.add(reading_row(db, (SITE, device, metric, "gw1"), value, ts))


def _resident(db: Session, unit: str, building: str = "b1", *, alone: bool = True,
              devices: tuple[str, ...] = ("pir-1",)) -> int:  # fmt: skip
    row = Resident(site=SITE, building=building, unit=unit, name=f"resident {unit}", phone=None,
                   living_alone=alone, activity_devices=list(devices), welfare_after_h=24.0,
                   created_at=T0, updated_at=T0)  # fmt: skip
    db.add(row)
    db.flush()
    return row.id


def test_last_activity_is_true_binary_readings_or_events(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        _reading(db, "pir-1", 1.0, T0)
        _reading(db, "pir-1", 0.0, T0 + timedelta(hours=3))  # heartbeat: nothing moved
        _reading(db, "pir-1", 21.5, T0 + timedelta(hours=4), metric="temperature")  # analog
        _reading(db, "door-9", 1.0, T0 + timedelta(hours=5), metric="open")  # not theirs
    with sessions() as db:
        assert last_activity(db, SITE, ["pir-1"]) == T0
        assert last_activity(db, SITE, ["pir-1", "door-9"]) == T0 + timedelta(hours=5)
        assert last_activity(db, SITE, ["nothing"]) is None
    with sessions.begin() as db:
        db.add(DeviceEventRow(msg_id="e1", site=SITE, gateway="gw1", device="pir-1",
                              event="tamper", priority="normal", attrs={},
                              ts=T0 + timedelta(hours=6), historical=False))  # fmt: skip
    with sessions() as db:
        assert last_activity(db, SITE, ["pir-1"]) == T0 + timedelta(hours=6)


def test_one_open_incident_dispatched_to_the_grid_and_kept_when_activity_resumes(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as db:
        made = make_orgs(db)
        alone = _resident(db, "b1-101")
        _resident(db, "b1-102", alone=False)
        _reading(db, "pir-1", 1.0, T0 + timedelta(hours=1))
        _reading(db, "pir-1", 0.0, T0 + timedelta(hours=20))  # heartbeat only
    assert run_welfare(sessions, T0 + timedelta(hours=24, minutes=59)) == []
    opened = run_welfare(sessions, T0 + timedelta(hours=25))
    assert len(opened) == 1
    with sessions() as db:
        inc = incidents.get_incident(db, opened[0])
        assert inc.category == "welfare_check" and inc.building == "b1"
        assert inc.state is State.DISPATCHED and inc.org_id == made.grid_b1
        check = db.scalars(select(WelfareCheck)).one()
        assert check.resident_id == alone and check.incident_id == opened[0]
        assert check.last_activity == T0 + timedelta(hours=1)
        actions = [e["action"] for e in incidents.timeline(db, opened[0])]
        assert actions[:2] == ["opened", "dispatch"]
    assert run_welfare(sessions, T0 + timedelta(hours=60)) == []  # still open: no second one
    with sessions.begin() as db:
        _reading(db, "pir-1", 1.0, T0 + timedelta(hours=61))  # the resident moves again
    assert run_welfare(sessions, T0 + timedelta(hours=62)) == []
    with sessions() as db:
        assert incidents.get_incident(db, opened[0]).state is State.DISPATCHED  # a person closes


def test_after_a_check_ends_the_next_needs_another_full_silence(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as db:
        make_orgs(db)
        _resident(db, "b1-101")
    first = run_welfare(sessions, T0 + timedelta(hours=24))
    assert len(first) == 1
    with sessions.begin() as db:
        incidents.act(db, first[0], Action.CANCEL, actor="pm1",
                      args=incidents.ActionArgs(reason="visited: fine, sensor battery flat"),
                      now=T0 + timedelta(hours=26))  # fmt: skip
    assert run_welfare(sessions, T0 + timedelta(hours=47)) == []
    second = run_welfare(sessions, T0 + timedelta(hours=48))
    assert len(second) == 1 and second != first


@pytest.mark.parametrize("volunteers", [True, False])
def test_no_grid_worker_for_the_building_falls_back_to_volunteers(
    sessions: sessionmaker[Session], volunteers: bool
) -> None:
    with sessions.begin() as db:
        make_orgs(db)  # its grid serves b1 only
        team = None
        if volunteers:
            body = OrgIn(name="志愿者服务队", kind="volunteer", site=SITE, buildings=["b2"])
            team = orgs.create_org(db, body).id
        _resident(db, "b2-301", building="b2", devices=("door-7",))
    opened = run_welfare(sessions, T0 + timedelta(hours=30))
    assert len(opened) == 1
    with sessions() as db:
        inc = incidents.get_incident(db, opened[0])
        if volunteers:
            assert inc.state is State.DISPATCHED and inc.org_id == team
        else:
            assert inc.state is State.OPEN and inc.org_id is None
            lines = incidents.timeline(db, opened[0])
            assert any("no grid or volunteer" in str(e["detail"]) for e in lines)


def test_the_app_runs_the_welfare_loop(tmp_path: Path) -> None:
    """The lifespan's supervised ``welfare`` task opens the check on its own (clock and period
    from ``app.state``)."""
    app = create_app(Settings(db_url=f"sqlite:///{tmp_path / 'cloud.db'}", mqtt_enabled=False,
                              static_dashboards=False))  # fmt: skip
    app.state.risk_config = RiskConfig(welfare_every_s=0.2)
    app.state.gov_clock = lambda: T0 + timedelta(hours=30)
    with TestClient(app):
        sessions: sessionmaker[Session] = app.state.services.sessions
        with sessions.begin() as db:
            make_orgs(db)
            _resident(db, "b1-101")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with sessions() as db:
                checks = db.scalars(select(WelfareCheck)).all()
            if checks:
                break
            time.sleep(0.1)
        assert len(checks) == 1 and checks[0].opened_at == T0 + timedelta(hours=30)
        assert "welfare" not in app.state.services.task_failures

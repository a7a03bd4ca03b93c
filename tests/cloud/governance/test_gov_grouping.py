"""Alert grouping: serious alerts join the open incident of their site+zone or open one; the
hook runs where rules raise alerts (cloud/rules/effects.py) and never breaks raising."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service as alerts
from cloud.alerts.states import Severity
from cloud.alerts.tables import Alert
from cloud.alerts.views import AlertOut
from cloud.governance import grouping, incidents
from cloud.governance.tables import Incident, IncidentAlert
from cloud.notify.dispatcher import Notifier
from cloud.notify.hub import Hub
from cloud.rules.effects import Effects
from cloud.settings import Settings
from protocols.rules.actions import RaiseAlert
from protocols.rules.language import Severity as RuleSeverity
from protocols.rules.language import SubjectType

T0 = datetime.now(UTC).replace(microsecond=0)


def raise_one(db: Session, subject: str, severity: Severity, zone: str | None = "z1",
              at: datetime = T0) -> AlertOut:  # fmt: skip
    spec = alerts.RaiseSpec(site="g-site", rule_id="smoke", subject=subject, severity=severity,
                            title_en="Smoke", title_zh="烟雾", ts=at, zone=zone,
                            building="b1")  # fmt: skip
    return alerts.raise_alert(db, spec, at).alert


def test_grouping_by_zone_and_window(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        minor = raise_one(db, "d0", Severity.MINOR)
        assert grouping.on_alert_raised(db, minor, now=T0) is None
        first = raise_one(db, "d1", Severity.MAJOR)
        iid = grouping.on_alert_raised(db, first, now=T0)
        assert iid is not None
        second = raise_one(db, "d2", Severity.CRITICAL)
        assert grouping.on_alert_raised(db, second, now=T0 + timedelta(seconds=599)) == iid
        other_zone = raise_one(db, "d3", Severity.MAJOR, zone="z2")
        assert grouping.on_alert_raised(db, other_zone, now=T0) not in (None, iid)
        late = raise_one(db, "d4", Severity.MAJOR)
        assert grouping.on_alert_raised(db, late, now=T0 + timedelta(seconds=601)) not in (
            None, iid)  # fmt: skip
    with sessions() as db:
        got = incidents.detail(db, iid, now=T0)
    assert (got.source, got.category, got.state, got.severity) == (
        "alert",
        "safety_alert",
        "open",
        "critical",
    )  # raised to the worst alert's severity
    assert got.alert_ids == sorted([first.id, second.id])
    assert [e.action for e in got.timeline] == ["opened", "alerts_linked", "alerts_linked"]


def test_a_failing_hook_does_not_lose_the_alert(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object, **__: object) -> int:
        raise RuntimeError("governance is broken")

    monkeypatch.setattr(grouping, "group", broken)
    with sessions.begin() as db:
        alert = raise_one(db, "d1", Severity.CRITICAL)
        assert grouping.on_alert_raised(db, alert, now=T0) is None
    with sessions() as db:
        assert db.get(Alert, alert.id) is not None
        assert db.scalar(select(func.count()).select_from(Incident)) == 0


@pytest.mark.anyio
async def test_rules_effects_group_raised_alerts(sessions: sessionmaker[Session]) -> None:
    settings = Settings(db_url="sqlite://", mqtt_enabled=False)
    hub = Hub()
    effects = Effects(settings, sessions, Notifier(settings.channels, sessions, hub), hub, None)
    now = datetime.now(UTC)
    actions = [
        RaiseAlert(rule_id=f"fire-{n}", site="g-site", subject="z1", subject_type=SubjectType.ZONE,
                   ts=now, severity=RuleSeverity.CRITICAL, title_zh="火警", title_en="Fire",
                   zone="z1", building="b1", evidence=())
        for n in range(2)
    ]  # fmt: skip
    await effects.apply(actions)
    with sessions() as db:
        [incident] = db.scalars(select(Incident))
        linked = db.scalar(select(func.count()).select_from(IncidentAlert))
    assert (incident.site, incident.zone, incident.source) == ("g-site", "z1", "alert")
    assert linked == 2

"""Drill marking without the simulator: alerts raised for a site while one of its drills runs
are marked ``drill`` (and no others) — cloud.alerts asks the drill mode the risk module
registered, which caches the running drills (no query per alert), sees a drill started or ended
by this process at once and one of another process within its TTL; their notifications say
"[演练 DRILL]" on every channel; a drill left running by a dead process is failed at start so
that marking stops; the drill routes refuse an unknown scenario and a second drill of a busy
site."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service as alerts
from cloud.alerts.states import Severity
from cloud.alerts.tables import Notification
from cloud.auth.deps import Role
from cloud.notify.channels import DRILL_PREFIX, Notice, _email, notice_of
from cloud.notify.dispatcher import Notifier
from cloud.notify.hub import Hub
from cloud.registry.service import Registry
from cloud.registry.tables import Gateway, Site
from cloud.risk import drills
from cloud.risk.drillmode import DRILL_SITES, DrillSites, install
from cloud.risk.drills import DrillRunner
from cloud.risk.tables import Drill
from cloud.settings import EmailChannel, InAppChannel, Settings
from tests.cloud.governance.conftest import GovApp

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def drill_mode() -> Iterator[DrillSites]:
    """The drill mode registered as at app start (and unregistered after the test)."""
    yield install()
    alerts.use_drill_mode(None)


def _drill(db: Session, site: str, status: str) -> int:
    row = Drill(site=site, scenario="fire-in-building", participants=[], status=status,
                created_by="manager1", created_at=NOW, started_at=NOW, expected=[])  # fmt: skip
    db.add(row)
    db.flush()
    return row.id


def _raise(db: Session, site: str, subject: str) -> alerts.RaiseOutcome:
    spec = alerts.RaiseSpec(site=site, rule_id="smoke-alarm", subject=subject,
                            severity=Severity.CRITICAL, title_en="Smoke", title_zh="烟雾报警",
                            ts=NOW)  # fmt: skip
    return alerts.raise_alert(db, spec, NOW)


def test_only_alerts_of_the_drilled_site_while_it_runs_are_marked(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as db:
        before = _raise(db, "s1", "smoke-a").alert
        drill = _drill(db, "s1", "pending")
    drills.save(sessions, drill, status="running")  # as the runner starts it
    with sessions.begin() as db:
        during = _raise(db, "s1", "smoke-b").alert
        elsewhere = _raise(db, "s2", "smoke-c").alert
    drills.save(sessions, drill, status="finished")
    with sessions.begin() as db:
        after = _raise(db, "s1", "smoke-d").alert
    assert (before.drill, during.drill, elsewhere.drill, after.drill) == (False, True, False, False)
    with sessions() as db:
        assert alerts.get_alert(db, during.id).drill is True


def test_raising_alerts_does_not_query_the_drills_each_time(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as db:
        _drill(db, "s1", "running")
    DRILL_SITES.invalidate()  # the row was written behind the runner's back
    asked: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        if "risk_drills" in statement:
            asked.append(statement)

    engine = sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", count)
    try:
        with sessions.begin() as db:
            marked = [_raise(db, "s1", f"smoke-{n}").alert.drill for n in range(5)]
            plain = [_raise(db, "s2", f"smoke-{n}").alert.drill for n in range(5)]
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert marked == [True] * 5 and plain == [False] * 5
    assert len(asked) == 1, asked  # one read for ten alerts


def test_a_drill_of_another_process_is_seen_once_the_cache_expires(
    sessions: sessionmaker[Session],
) -> None:
    ticks = [0.0]
    install(DrillSites(ttl_s=5.0, clock=lambda: ticks[0]))
    with sessions.begin() as db:
        assert _raise(db, "s1", "smoke-a").alert.drill is False  # caches "no drill"
        _drill(db, "s1", "running")  # another process starts one: no invalidation here
    ticks[0] = 4.9
    with sessions.begin() as db:
        assert _raise(db, "s1", "smoke-b").alert.drill is False  # still trusted
    ticks[0] = 5.0
    with sessions.begin() as db:
        assert _raise(db, "s1", "smoke-c").alert.drill is True


def test_without_a_registered_drill_mode_nothing_is_marked_and_alerts_do_not_import_risk(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as db:
        _drill(db, "s1", "running")
    alerts.use_drill_mode(None)
    with sessions.begin() as db:
        assert _raise(db, "s1", "smoke-a").alert.drill is False
    probe = (
        "import sys, cloud.alerts.service; "
        "print(sorted(m for m in sys.modules if m.startswith('cloud.risk')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_drill_notices_are_prefixed_on_every_channel() -> None:
    base = Notice(kind="raised", alert_id=1, site="s1", rule_id="smoke-alarm", subject="smoke-1",
                  severity="critical", status="open", title_en="Smoke", title_zh="烟雾报警",
                  ts=NOW.isoformat())  # fmt: skip
    drill = base.model_copy(update={"drill": True})
    assert not base.subject_line.startswith(DRILL_PREFIX)
    assert drill.subject_line.startswith("[演练 DRILL] [Linli CRITICAL]")
    assert drill.titles() == (DRILL_PREFIX + "Smoke", DRILL_PREFIX + "烟雾报警")
    mail = _email(EmailChannel(to=("duty@example.org",)), drill)
    assert mail["Subject"].startswith(DRILL_PREFIX)
    assert mail.get_content().startswith(f"{DRILL_PREFIX}Smoke / {DRILL_PREFIX}烟雾报警")
    assert drill.model_dump(mode="json")["drill"] is True  # webhook bodies carry the flag


@pytest.mark.anyio
async def test_inapp_notification_of_a_drill_alert_is_marked_whoever_built_the_notice(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as db:
        _drill(db, "s1", "running")
        marked = _raise(db, "s1", "smoke-b").alert
        plain = _raise(db, "s2", "smoke-c").alert
    notifier = Notifier({"app": InAppChannel(roles=("manager",))}, sessions, Hub())
    worker = asyncio.create_task(notifier.run())
    try:
        # built without the flag (as a rule's notify action does): the notifier looks it up
        unflagged = notice_of(marked, "rule").model_copy(update={"drill": False})
        notifier.submit(["app"], unflagged)
        notifier.submit(["app"], notice_of(plain, "raised"))
        async with asyncio.timeout(20):
            await notifier.join()
    finally:
        worker.cancel()
    with sessions() as db:
        titles = dict(db.execute(select(Notification.alert_id, Notification.title_zh)).all())
    assert titles == {marked.id: DRILL_PREFIX + "烟雾报警", plain.id: "烟雾报警"}


@pytest.mark.anyio
async def test_a_drill_left_running_by_a_dead_process_is_failed_at_start(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as db:
        stale = _drill(db, "s1", "running")
        done = _drill(db, "s2", "finished")
    runner = DrillRunner(Settings(mqtt_enabled=False), sessions, Registry(sessions.kw["bind"]),
                         Notifier({}, sessions, Hub()))  # fmt: skip
    task = asyncio.create_task(runner.run())
    try:
        async with asyncio.timeout(20):
            await runner.wait(stale)
    finally:
        task.cancel()
    with sessions() as db:
        row = db.get_one(Drill, stale)
        assert row.status == "failed" and "restart" in (row.error or "")
        assert db.get_one(Drill, done).status == "finished"
        assert alerts.drill_running(db, "s1") is False


def test_drill_routes_refuse_unknown_scenario_and_a_busy_site(gov_app: GovApp) -> None:
    unknown = gov_app.client.post("/api/gov/drills", headers=gov_app.headers(Role.MANAGER),
                                  json={"site": "s1", "scenario": "alien-invasion"})  # fmt: skip
    assert unknown.status_code == 422
    detail = unknown.json()["detail"][0]
    assert detail["loc"] == ["body", "scenario"] and "alien-invasion" in detail["msg"]
    assert "fire-in-building" in detail["msg"]  # the known ones are named
    with gov_app.cloud.services.sessions.begin() as db:
        busy = _drill(db, "s1", "running")
    again = gov_app.client.post("/api/gov/drills", headers=gov_app.headers(Role.MANAGER),
                                json={"site": "s1", "scenario": "fire-in-building"})  # fmt: skip
    assert again.status_code == 409 and f"drill {busy}" in again.text
    with gov_app.cloud.services.sessions.begin() as db:
        db.add(Site(id="live", auto_approve=False))
        db.flush()
        db.add(Gateway(site="live", id="gw-b1", approval="approved", online=True))
    live = gov_app.client.post("/api/gov/drills", headers=gov_app.headers(Role.MANAGER),
                               json={"site": "live", "scenario": "fire-in-building"})  # fmt: skip
    assert live.status_code == 409 and "gw-b1" in live.text
    guard = gov_app.client.post("/api/gov/drills", headers=gov_app.headers(Role.GUARD),
                                json={"site": "s2", "scenario": "fire-in-building"})  # fmt: skip
    assert guard.status_code == 403
    listed = gov_app.call("GET", "/api/gov/drills", Role.VIEWER)
    assert [d["id"] for d in listed] == [busy] and listed[0]["status"] == "running"
    scenarios = gov_app.call("GET", "/api/gov/drills/scenarios", Role.MANAGER)
    fire = next(s for s in scenarios if s["name"] == "fire-in-building")
    assert {e["rule"] for e in fire["expected"]} >= {"smoke-alarm", "confirmed-fire"}
    missing = gov_app.client.get("/api/gov/reports/after-action/drill/999.pdf",
                                 headers=gov_app.headers(Role.MANAGER))  # fmt: skip
    assert missing.status_code == 404
    wrong = gov_app.client.get("/api/gov/reports/after-action/alert/1.pdf",
                               headers=gov_app.headers(Role.MANAGER))  # fmt: skip
    assert wrong.status_code == 422


@pytest.mark.anyio
async def test_participants_are_told_personally_and_see_it_whatever_their_role(
    sessions: sessionmaker[Session],
) -> None:
    notifier = Notifier({"app": InAppChannel(roles=("manager",))}, sessions, Hub())
    notice = Notice(
        kind="drill",
        alert_id=None,
        site="s1",
        rule_id="drill",
        subject="fire",
        severity="info",
        status="started",
        title_en="Drill fire started",
        title_zh="演练 fire 开始",
        ts=datetime.now(UTC).isoformat(),
        drill=True,
    )
    worker = asyncio.create_task(notifier.run())
    try:
        async with notifier.hub.subscribe(frozenset({"notification"})) as sub:
            notifier.submit(["app"], notice)
            notifier.tell(["responder1", "resident7", "responder1"], notice)
            async with asyncio.timeout(20):
                await notifier.join()
                events = [await sub.get(), await sub.get()]
    finally:
        worker.cancel()
    with sessions() as db:
        rows = db.execute(select(Notification.role, Notification.username)).all()
    assert sorted(rows, key=str) == sorted(
        [("manager", None), ("personal", "responder1"), ("personal", "resident7")], key=str
    )
    assert {tuple(e.get("users", ())) for e in events} == {(), ("responder1", "resident7")}

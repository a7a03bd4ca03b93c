"""Drills: run a simulator scenario against this cloud as an exercise.

``POST /api/gov/drills`` records a drill (``pending``) and hands it to :class:`DrillRunner`, a
task of the app's lifespan. The runner imports the scenario's site file under the drill's site
(its simulated gateways and devices join the registry, approved), marks the drill ``running``
— from then on every alert raised for that site is marked ``drill`` (cloud.alerts) — starts
the scenario's simulated gateways (real edge agents speaking MQTT to the cloud's own broker)
and plays its timeline, watching the alerts it produces. When the scenario ends the drill is
``finished`` with the simulator checker's report (expected vs observed alerts), or ``failed``
with the error. Participants are told on every configured channel at start and end (notices
marked ``drill``).

One drill per site at a time. A drill still ``running`` when the app starts (the process died
mid-drill) is marked ``failed``, so that the site's alerts stop being marked as exercises.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.tables import Alert
from cloud.governance.errors import Invalid, Refused
from cloud.governance.models import Username
from cloud.notify.channels import Notice
from cloud.notify.dispatcher import Notifier
from cloud.notify.loop import LoopBound
from cloud.registry.service import Registry
from cloud.registry.sitefile import SiteFileError, load_site_file
from cloud.registry.tables import Gateway
from cloud.risk.drillmode import DRILL_SITES
from cloud.risk.gather import drill_alert_ids, get_drill
from cloud.risk.tables import Drill
from cloud.settings import Settings
from protocols.ids import Ident
from simulators.cloudclient import CloudAlert, CloudClient
from simulators.errors import SimulatorError
from simulators.scenario import Scenario, library, load_scenario

if TYPE_CHECKING:  # imported when a drill runs: it needs the edge agent (linli[sim])
    from simulators.runner import ScenarioRun

log = logging.getLogger(__name__)

DrillStatus = Literal["pending", "running", "finished", "failed"]
ACTIVE: tuple[DrillStatus, ...] = ("pending", "running")
OVERRUN_S = 120.0
"""Real seconds a drill may run past its scenario's duration before it is stopped."""


class DrillIn(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    site: Ident
    scenario: Ident = Field(description="A scenario of the simulator library (GET /api/gov/drills)")
    participants: list[Username] = Field(default_factory=list, max_length=100)
    note: Annotated[str, Field(max_length=2000)] | None = None


class RaisedAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    rule_id: str
    subject: str
    severity: str
    status: str
    raised_at: datetime
    acknowledged_at: datetime | None


class DrillOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    site: str
    scenario: str
    note: str | None
    participants: list[str]
    status: DrillStatus
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expected: list[dict[str, Any]]
    raised: list[RaisedAlert]
    check: dict[str, Any] | None
    passed: bool | None
    error: str | None


def scenarios() -> dict[str, Path]:
    """The scenarios a drill can run: the simulator library, by name."""
    return {p.stem: p for p in library()}


def expected_of(scenario: Scenario) -> list[dict[str, Any]]:
    return [
        {"rule": e.rule, "severity": e.severity, "subject": e.subject, "deadline": e.deadline}
        for e in scenario.expect
    ]


def drill_out(db: Session, row: Drill, now: datetime) -> DrillOut:
    ids = drill_alert_ids(db, row, now)
    raised = [
        RaisedAlert(id=a.id, rule_id=a.rule_id, subject=a.subject, severity=a.severity,
                    status=a.status, raised_at=a.raised_at, acknowledged_at=a.acknowledged_at)
        for a in db.scalars(select(Alert).where(Alert.id.in_(ids)).order_by(Alert.raised_at))
    ]  # fmt: skip
    return DrillOut(
        id=row.id,
        site=row.site,
        scenario=row.scenario,
        note=row.note,
        participants=list(row.participants),
        status=row.status,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expected=list(row.expected),
        raised=raised,
        check=row.check,
        passed=row.passed,
        error=row.error,
    )


def list_drills(db: Session, now: datetime, site: str | None = None) -> list[DrillOut]:
    query = select(Drill).order_by(Drill.id.desc()).limit(200)
    if site is not None:
        query = query.where(Drill.site == site)
    return [drill_out(db, row, now) for row in db.scalars(query)]


def create_drill(db: Session, body: DrillIn, *, actor: str, now: datetime) -> Drill:
    """Record a pending drill (caller commits, then :meth:`DrillRunner.submit`)."""
    path = scenarios().get(body.scenario)
    if path is None:
        known = ", ".join(sorted(scenarios()))
        raise Invalid("scenario", f"unknown scenario {body.scenario!r} (known: {known})")
    busy = db.scalar(
        select(Drill.id).where(Drill.site == body.site, Drill.status.in_(ACTIVE)).limit(1)
    )
    if busy is not None:
        raise Refused(f"drill {busy} is still running for site {body.site}", conflict=True)
    scenario = load_scenario(path)
    _refuse_live_gateways(db, body.site, scenario)
    row = Drill(
        site=body.site,
        scenario=body.scenario,
        note=body.note,
        participants=list(dict.fromkeys(body.participants)),
        status="pending",
        created_by=actor,
        created_at=now,
        expected=expected_of(scenario),
    )
    db.add(row)
    db.flush()
    return row


def _refuse_live_gateways(db: Session, site: str, scenario: Scenario) -> None:
    """A drill's simulated gateways take the ids of its site file's gateways: refuse when one
    of them is online in the site (a real gateway would be impersonated and kicked off)."""
    try:
        sitefile = load_site_file(scenario.resolve(scenario.site))
    except SiteFileError as exc:
        raise Invalid("scenario", f"the scenario's site file is broken: {exc}") from exc
    ids = [g.id for g in sitefile.gateways]
    live = db.scalars(
        select(Gateway.id).where(
            Gateway.site == site, Gateway.id.in_(ids), Gateway.online.is_(True)
        )
    ).all()
    if live:
        raise Refused(
            f"gateway(s) {', '.join(sorted(live))} of scenario {scenario.name} are online in "
            f"site {site}: the drill's simulated gateways would take their place; "
            "drill on another site id",
            conflict=True,
        )


def save(sessions: sessionmaker[Session], drill_id: int, **values: Any) -> Drill:
    """Change a drill's columns (its own transaction); a new ``status`` is seen by alert
    marking at once (:mod:`cloud.risk.drillmode`). Returns the row, detached."""
    with sessions.begin() as db:
        row = get_drill(db, drill_id)
        for name, value in values.items():
            setattr(row, name, value)
        db.flush()
        db.expunge(row)
    if "status" in values:
        DRILL_SITES.invalidate()  # after the commit: a reader must not cache the old state
    return row


class LocalAlerts(CloudClient):
    """The simulator's view of the alerts, read from this cloud's database instead of over HTTP
    (the runner only calls :meth:`alerts`; the HTTP client of the base class stays unused)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        super().__init__("http://drill.invalid")
        self.sessions = sessions

    def _read(self, site: str) -> list[CloudAlert]:
        with self.sessions() as db:
            rows = db.execute(
                select(Alert.id, Alert.rule_id, Alert.severity, Alert.subject)
                .where(Alert.site == site)
                .order_by(Alert.id.desc())
                .limit(1000)
            ).all()
        return [CloudAlert(i, site, rule, severity, subject) for i, rule, severity, subject in rows]

    async def alerts(self, site: str) -> list[CloudAlert]:
        try:
            return await asyncio.to_thread(self._read, site)
        except SQLAlchemyError as exc:
            raise SimulatorError(f"reading the alerts of {site} failed: {exc}") from exc


class DrillRunner(LoopBound):
    """Runs submitted drills, each as a task of :meth:`run` (one of the app's supervised tasks)."""

    def __init__(
        self,
        settings: Settings,
        sessions: sessionmaker[Session],
        registry: Registry,
        notifier: Notifier,
        *,
        poll_s: float = 1.0,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.sessions = sessions
        self.registry = registry
        self.notifier = notifier
        self.poll_s = poll_s
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self.running: dict[int, asyncio.Task[None]] = {}

    def submit(self, drill_id: int) -> None:
        """Start a recorded drill (from any thread)."""
        self._in_loop(lambda: self._queue.put_nowait(drill_id))

    async def run(self) -> None:
        await asyncio.to_thread(self._fail_interrupted)
        async with asyncio.TaskGroup() as tg:
            while True:
                drill_id = await self._queue.get()
                task = tg.create_task(self._run_one(drill_id), name=f"drill-{drill_id}")
                self.running[drill_id] = task
                task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self.running = {d: t for d, t in self.running.items() if t is not task}

    async def wait(self, drill_id: int) -> None:
        """Until the drill is over (tests; wrap in ``asyncio.timeout``)."""
        while True:
            task = self.running.get(drill_id)
            if task is not None:
                await asyncio.shield(task)
                return
            with self.sessions() as db:
                status = get_drill(db, drill_id).status
            if status not in ACTIVE:
                return
            await asyncio.sleep(0.1)

    def _fail_interrupted(self) -> None:
        with self.sessions.begin() as db:
            done = db.execute(
                update(Drill)
                .where(Drill.status.in_(ACTIVE))
                .values(status="failed", error="interrupted: the cloud restarted",
                        finished_at=datetime.now(UTC))
            )  # fmt: skip
        count = int(getattr(done, "rowcount", 0) or 0)
        DRILL_SITES.invalidate()
        if count:
            log.warning("%d drill(s) interrupted by a restart marked failed", count)

    def _set(self, drill_id: int, **values: Any) -> Drill:
        return save(self.sessions, drill_id, **values)

    def _tell(self, row: Drill, status: str) -> None:
        who = ", ".join(row.participants) or "-"
        notice = Notice(
            kind="drill",
            alert_id=None,
            site=row.site,
            rule_id="drill",
            subject=row.scenario,
            severity="info",
            status=status,
            title_en=f"Drill {row.scenario} {status}",
            title_zh=f"演练 {row.scenario} {'开始' if status == 'started' else '结束'}",
            ts=datetime.now(UTC).isoformat(),
            note=f"drill #{row.id}; participants: {who}" + (f"; {row.note}" if row.note else ""),
            drill=True,
        )
        self.notifier.submit(self.settings.channels, notice)
        self.notifier.tell(row.participants, notice)

    def _prepare(self, drill_id: int) -> tuple[Drill, Scenario]:
        with self.sessions() as db:
            row = get_drill(db, drill_id)
            db.expunge(row)
        path = scenarios().get(row.scenario)
        if path is None:
            raise SimulatorError(f"scenario {row.scenario} is no longer in the library")
        return row, load_scenario(path)

    async def _run_one(self, drill_id: int) -> None:
        try:
            row, scenario = await asyncio.to_thread(self._prepare, drill_id)
        except (SimulatorError, SQLAlchemyError) as exc:
            log.error("drill %s cannot start: %s", drill_id, exc)
            await asyncio.to_thread(self._finish, drill_id, None, str(exc))
            return
        try:
            from simulators.runner import RunOptions, ScenarioRun
        except ImportError as exc:
            missing = f"drills need the simulator and edge agent (pip install 'linli[sim]'): {exc}"
            log.error("drill %s cannot start: %s", drill_id, missing)
            await asyncio.to_thread(self._finish, drill_id, None, missing)
            return
        with tempfile.TemporaryDirectory(prefix=f"linli-drill-{drill_id}-") as state:
            options = RunOptions(
                mqtt_host=self.settings.mqtt_host,
                mqtt_port=self.settings.mqtt_port,
                site=row.site,
                state_dir=Path(state),
                poll=self.poll_s,
            )
            error: str | None = None
            report: dict[str, Any] | None = None
            try:
                async with LocalAlerts(self.sessions) as cloud:
                    run = ScenarioRun(scenario, options, cloud=cloud)
                    await asyncio.to_thread(self._import_site, run)
                    row = await asyncio.to_thread(
                        self._set, drill_id, status="running", started_at=datetime.now(UTC)
                    )
                    self._tell(row, "started")
                    log.info("drill %s: %s on site %s started", drill_id, row.scenario, row.site)
                    async with asyncio.timeout(scenario.duration / run.clock.speed + OVERRUN_S):
                        result = await run.run()
                    report = result.model_dump(mode="json")
            except (SimulatorError, TimeoutError, OSError, SQLAlchemyError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.error("drill %s failed: %s", drill_id, error)
            finally:
                done = await asyncio.to_thread(self._finish, drill_id, report, error)
                self._tell(done, "finished")

    def _import_site(self, run: ScenarioRun) -> None:
        with self.sessions.begin() as db:
            self.registry.import_site(db, run.cloud_sitefile())

    def _finish(self, drill_id: int, report: dict[str, Any] | None, error: str | None) -> Drill:
        if report is None and error is None:
            error = "stopped before the scenario ended (the cloud is shutting down)"
        status: DrillStatus = "finished" if error is None else "failed"
        return self._set(
            drill_id,
            status=status,
            finished_at=datetime.now(UTC),
            check=report,
            passed=None if report is None else bool(report.get("passed")),
            error=error,
        )

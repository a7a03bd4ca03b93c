"""The risk register: risks per building, each linked to the sensors and rules that watch it.

Links are checked when written: a device id must be registered for the risk's site and a rule id
must be one of the loaded rule packs (:class:`Invalid` naming the field and the unknown ids).
The ``watch`` view shows whether a risk is actually watched: its devices' latest readings and
liveness, its rules' active alerts.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.alerts.tables import Alert
from cloud.governance.errors import Invalid, NotFound
from cloud.governance.models import Category, Phase, RowRef
from cloud.governance.tables import Organisation
from cloud.registry.liveness import is_offline, report_interval
from cloud.registry.tables import Device
from cloud.risk.levels import Level, risk_level, rule_phase
from cloud.risk.tables import Risk
from cloud.storage.tables import Reading, Series
from protocols.ids import Ident
from protocols.rules.language import RuleSet

RiskStatus = Literal["open", "mitigating", "closed"]
Rating = Annotated[int, Field(ge=1, le=5)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Measure = Annotated[str, Field(min_length=1, max_length=500)]
RuleRef = Annotated[str, Field(min_length=1, max_length=64)]
MAX_LINKS = 100
LATEST_READINGS = 50
"""Newest readings of a device looked at for its latest value per metric."""


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RiskIn(_In):
    site: Ident
    building: Ident | None = None
    category: Category
    title_zh: Title
    title_en: Title
    likelihood: Rating
    impact: Rating
    phase: Phase = "prevention"
    status: RiskStatus = "open"
    owner_org_id: RowRef | None = None
    device_ids: list[Ident] = Field(default_factory=list, max_length=MAX_LINKS)
    rule_ids: list[RuleRef] = Field(default_factory=list, max_length=MAX_LINKS)
    measures: list[Measure] = Field(default_factory=list, max_length=50)


class RiskPatch(_In):
    building: Ident | None = None
    category: Category | None = None
    title_zh: Title | None = None
    title_en: Title | None = None
    likelihood: Rating | None = None
    impact: Rating | None = None
    phase: Phase | None = None
    status: RiskStatus | None = None
    owner_org_id: RowRef | None = None
    device_ids: list[Ident] | None = Field(None, max_length=MAX_LINKS)
    rule_ids: list[RuleRef] | None = Field(None, max_length=MAX_LINKS)
    measures: list[Measure] | None = Field(None, max_length=50)


class RiskOut(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    site: str
    building: str | None
    category: str
    title_zh: str
    title_en: str
    likelihood: int
    impact: int
    level: Level
    phase: str
    status: str
    owner_org_id: int | None
    device_ids: list[str]
    rule_ids: list[str]
    measures: list[str]
    created_at: datetime
    updated_at: datetime
    updated_by: str

    @classmethod
    def of(cls, row: Risk) -> RiskOut:
        data = {name: getattr(row, name) for name in cls.model_fields if name != "level"}
        return cls.model_validate({**data, "level": risk_level(row.likelihood, row.impact)})


def check_devices(db: Session, site: str, device_ids: Collection[str], field: str) -> None:
    """:class:`Invalid` naming ``field`` unless every device is registered for ``site``."""
    wanted = sorted(set(device_ids))
    if not wanted:
        return
    known = set(db.scalars(select(Device.id).where(Device.site == site, Device.id.in_(wanted))))
    missing = [d for d in wanted if d not in known]
    if missing:
        raise Invalid(field, f"unknown device(s) in site {site}: {', '.join(missing)}")


def check_rules(ruleset: RuleSet, rule_ids: Collection[str]) -> None:
    missing = sorted(set(rule_ids) - set(ruleset.ids))
    if missing:
        raise Invalid(
            "rule_ids", f"unknown rule(s): {', '.join(missing)} (not in the loaded packs)"
        )


def _check_org(db: Session, org_id: int | None) -> None:
    if org_id is not None and db.get(Organisation, org_id) is None:
        raise Invalid("owner_org_id", f"no organisation {org_id}")


def _dedup(items: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(items))


def create_risk(
    db: Session, body: RiskIn, ruleset: RuleSet, *, actor: str, now: datetime
) -> RiskOut:
    check_devices(db, body.site, body.device_ids, "device_ids")
    check_rules(ruleset, body.rule_ids)
    _check_org(db, body.owner_org_id)
    row = Risk(
        **body.model_dump(exclude={"device_ids", "rule_ids", "measures"}),
        device_ids=_dedup(body.device_ids),
        rule_ids=_dedup(body.rule_ids),
        measures=list(body.measures),
        created_at=now,
        updated_at=now,
        updated_by=actor,
    )
    db.add(row)
    db.flush()
    return RiskOut.of(row)


def changes_of(body: BaseModel, nullable: Collection[str] = ()) -> dict[str, Any]:
    """The fields a PATCH body sets; :class:`Invalid` for a null where a value is required."""
    changes = body.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise Invalid(name, "may not be null")
    return changes


def get_row(db: Session, risk_id: int) -> Risk:
    row = db.get(Risk, risk_id)
    if row is None:
        raise NotFound("risk", risk_id)
    return row


def patch_risk(
    db: Session, risk_id: int, body: RiskPatch, ruleset: RuleSet, *, actor: str, now: datetime
) -> RiskOut:
    row = get_row(db, risk_id)
    changes = changes_of(body, nullable=("building", "owner_org_id"))
    if body.device_ids is not None:
        check_devices(db, row.site, body.device_ids, "device_ids")
        changes["device_ids"] = _dedup(body.device_ids)
    if body.rule_ids is not None:
        check_rules(ruleset, body.rule_ids)
        changes["rule_ids"] = _dedup(body.rule_ids)
    if "owner_org_id" in changes:
        _check_org(db, body.owner_org_id)
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at, row.updated_by = now, actor
    db.flush()
    return RiskOut.of(row)


def list_risks(
    db: Session,
    *,
    site: str | None = None,
    building: str | None = None,
    status: str | None = None,
    phase: str | None = None,
) -> list[RiskOut]:
    query = select(Risk).order_by(Risk.site, Risk.building, Risk.id)
    for column, value in ((Risk.site, site), (Risk.building, building), (Risk.status, status),
                          (Risk.phase, phase)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    return [RiskOut.of(r) for r in db.scalars(query)]


# -- watch -------------------------------------------------------------------------------------


class LatestReading(BaseModel):
    model_config = ConfigDict(frozen=True)

    metric: str
    value: float
    ts: datetime


class DeviceWatch(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str | None
    name: str | None
    approval: str | None
    online: bool | None
    last_seen: datetime | None
    latest: list[LatestReading]


class ActiveAlert(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    subject: str
    severity: str
    status: str
    raised_at: datetime
    drill: bool


class RuleWatch(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    title_zh: str | None
    title_en: str | None
    loaded: bool
    enabled: bool
    phase: str | None
    active_alerts: list[ActiveAlert]


class RiskWatch(BaseModel):
    model_config = ConfigDict(frozen=True)

    risk: RiskOut
    devices: list[DeviceWatch]
    rules: list[RuleWatch]
    watched: bool = Field(
        description="At least one linked device is online and at least one linked rule runs"
    )
    problems: list[str] = Field(description="Linked devices offline or never seen, rules off")


def _device_watch(db: Session, site: str, device_id: str, now: datetime) -> DeviceWatch:
    """A device's latest value per metric; ``online`` judged now from its last report and
    its kind's report interval (as the liveness sweep does)."""
    row = db.get(Device, (site, device_id))
    rows = db.execute(
        select(Series.metric, Reading.value, Reading.ts)
        .join(Series, Series.id == Reading.series)
        .where(Series.site == site, Series.device == device_id)
        .order_by(Reading.ts.desc())
        .limit(LATEST_READINGS)
    ).all()
    latest: dict[str, LatestReading] = {}
    for metric, value, ts in rows:
        latest.setdefault(metric, LatestReading(metric=metric, value=value, ts=ts))
    return DeviceWatch(
        id=device_id,
        kind=None if row is None else row.kind,
        name=None if row is None else row.name,
        approval=None if row is None else row.approval,
        online=None if row is None else _online(row, now),
        last_seen=None if row is None else row.last_seen,
        latest=sorted(latest.values(), key=lambda r: r.metric),
    )


def _online(row: Device, now: datetime) -> bool | None:
    if row.last_seen is None:
        return None
    interval = report_interval(row.kind, row.report_interval_s)
    return not is_offline(row.last_seen, interval, now)


def _rule_watch(db: Session, site: str, rule_id: str, ruleset: RuleSet) -> RuleWatch:
    rule = ruleset.get(rule_id)
    alerts = db.scalars(
        select(Alert)
        .where(Alert.site == site, Alert.rule_id == rule_id, Alert.active_key.is_not(None))
        .order_by(Alert.raised_at.desc())
        .limit(100)
    )
    return RuleWatch(
        id=rule_id,
        title_zh=None if rule is None else rule.title.zh,
        title_en=None if rule is None else rule.title.en,
        loaded=rule is not None,
        enabled=rule is not None and rule.enabled,
        phase=None if rule is None else rule_phase(rule),
        active_alerts=[
            ActiveAlert(id=a.id, subject=a.subject, severity=a.severity, status=a.status,
                        raised_at=a.raised_at, drill=a.drill)
            for a in alerts
        ],
    )  # fmt: skip


def watch(db: Session, risk_id: int, ruleset: RuleSet, now: datetime) -> RiskWatch:
    risk = RiskOut.of(get_row(db, risk_id))
    devices = [_device_watch(db, risk.site, d, now) for d in risk.device_ids]
    rules = [_rule_watch(db, risk.site, r, ruleset) for r in risk.rule_ids]
    problems = [f"device {d.id} is offline" for d in devices if d.online is False]
    problems += [f"device {d.id} was never seen" for d in devices if d.last_seen is None]
    problems += [f"device {d.id} is no longer registered" for d in devices if d.approval is None]
    problems += [f"rule {r.id} is not loaded" for r in rules if not r.loaded]
    problems += [f"rule {r.id} is disabled" for r in rules if r.loaded and not r.enabled]
    if not devices:
        problems.append("no device is linked")
    if not rules:
        problems.append("no rule is linked")
    watched = any(d.online for d in devices) and any(r.enabled for r in rules)
    return RiskWatch(risk=risk, devices=devices, rules=rules, watched=watched, problems=problems)

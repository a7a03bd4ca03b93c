"""API models for alerts, separate from the rows and from the wire models."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict

from cloud.alerts.states import Severity, Status
from cloud.alerts.tables import Alert, AlertEvent


class AlertOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    site: str
    rule_id: str
    subject: str
    gateway: str | None
    device: str | None
    zone: str | None
    building: str | None
    severity: Severity
    status: Status
    title_en: str
    title_zh: str
    cleared: bool
    cleared_at: datetime | None
    flapping: bool
    flap_count: int
    count: int
    first_seen: datetime
    last_seen: datetime
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    assignee: str | None
    started_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    closed_at: datetime | None
    closed_by: str | None
    escalation_tier: int
    next_escalation_at: datetime | None
    whistled_at: datetime | None
    evidence: list[dict[str, Any]]
    drill: bool = False

    @classmethod
    def of(cls, row: Alert) -> AlertOut:
        return cls.model_validate(
            {name: getattr(row, name) for name in cls.model_fields}, from_attributes=False
        )


class AlertEventOut(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: int
    alert_id: int
    ts: datetime
    actor: str
    kind: str
    from_status: Status | None
    to_status: Status | None
    note: str | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: AlertEvent) -> AlertEventOut:
        return cls.model_validate(row)


class Kpis(BaseModel):
    model_config = ConfigDict(frozen=True)

    open_by_severity: dict[Severity, int]
    active_total: int
    mtta_s: float | None
    mttr_s: float | None
    acknowledged_count: int
    resolved_count: int


def live_event(alert: AlertOut, change: str) -> dict[str, Any]:
    """The live-stream form of an alert change."""
    return {"type": "alert", "change": change, "alert": alert.model_dump(mode="json")}

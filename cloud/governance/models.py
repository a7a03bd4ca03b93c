"""API models of governance (JSON in and out), separate from the rows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cloud.alerts.states import Severity
from cloud.governance.states import State
from protocols.ids import Ident

OrgKind = Literal["property", "committee", "grid", "department", "social", "volunteer"]
Department = Literal["fire", "police", "utilities", "sanitation", "health", "other"]
Phase = Literal["prevention", "preparation", "response", "recovery"]
MemberRole = Literal["lead", "member"]
Stage = Literal["ack", "arrive", "resolve"]
Source = Literal["report", "alert", "manual"]
Category = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-@]{2,64}$")]
Text200 = Annotated[str, Field(min_length=1, max_length=200)]
Note = Annotated[str, Field(max_length=4000)]
Phone = Annotated[str, Field(max_length=32)]
RowRef = Annotated[int, Field(ge=1, le=2**63 - 1)]
PHOTO_MAX_BYTES = 2 * 1024 * 1024
PhotoB64 = Annotated[str, Field(max_length=(PHOTO_MAX_BYTES * 4) // 3 + 8)]
PhotoType = Literal["image/jpeg", "image/png", "jpeg", "png"]


class _In(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class StageDeadlines(_In):
    ack_s: int = Field(15 * 60, ge=1, le=30 * 86400)
    arrive_s: int = Field(60 * 60, ge=1, le=30 * 86400)
    resolve_s: int = Field(24 * 3600, ge=1, le=365 * 86400)


class OrgIn(_In):
    name: Annotated[str, Field(min_length=1, max_length=128)]
    name_en: Annotated[str, Field(max_length=128)] | None = None
    kind: OrgKind
    phone: Phone | None = None
    site: Ident
    buildings: list[Ident] = Field(default_factory=list, max_length=500)
    zones: list[Ident] = Field(default_factory=list, max_length=500)
    department: Department | None = None
    deadlines: StageDeadlines | None = Field(
        None, description="Whistle stage deadlines (departments); defaults 15 min / 1 h / 24 h"
    )


class OrgPatch(_In):
    name: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    name_en: Annotated[str, Field(max_length=128)] | None = None
    phone: Phone | None = None
    buildings: list[Ident] | None = Field(None, max_length=500)
    zones: list[Ident] | None = Field(None, max_length=500)
    department: Department | None = None
    deadlines: StageDeadlines | None = None


class OrgOut(_Out):
    id: int
    name: str
    name_en: str | None
    kind: str
    phone: str | None
    site: str
    buildings: list[str]
    zones: list[str]
    department: str | None
    deadlines: StageDeadlines
    created_at: datetime


class MemberIn(_In):
    username: Username
    role: MemberRole = "member"
    name: Annotated[str, Field(max_length=128)] | None = None
    phone: Phone | None = None


class MemberOut(_Out):
    id: int
    org_id: int
    username: str
    role: str
    name: str | None
    phone: str | None


class CatalogueIn(_In):
    category: Category
    name_zh: Annotated[str, Field(min_length=1, max_length=128)]
    name_en: Annotated[str, Field(min_length=1, max_length=128)]
    org_kind: OrgKind
    org_id: RowRef | None = None
    deadline_s: int = Field(ge=60, le=365 * 86400)
    whistle_departments: list[Department] = Field(default_factory=list, max_length=6)
    phase: Phase = "response"


class CataloguePatch(_In):
    name_zh: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    name_en: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    org_kind: OrgKind | None = None
    org_id: RowRef | None = None
    deadline_s: int | None = Field(None, ge=60, le=365 * 86400)
    whistle_departments: list[Department] | None = Field(None, max_length=6)
    phase: Phase | None = None


class CatalogueOut(_Out):
    id: int
    category: str
    name_zh: str
    name_en: str
    org_kind: str
    org_id: int | None
    deadline_s: int
    whistle_departments: list[str]
    phase: str


class ReportIn(_In):
    site: Ident
    category: Category
    building: Ident | None = None
    zone: Ident | None = None
    location: Annotated[str, Field(min_length=1, max_length=200)]
    description: Annotated[str, Field(min_length=1, max_length=4000)]
    photo_b64: PhotoB64 | None = None
    photo_type: PhotoType | None = None


class IncidentIn(_In):
    site: Ident
    title: Text200
    category: Category
    building: Ident | None = None
    zone: Ident | None = None
    location: Annotated[str, Field(max_length=200)] | None = None
    description: Note | None = None
    severity: Severity = Severity.MINOR
    alert_ids: list[RowRef] = Field(default_factory=list, max_length=100)
    phase: Phase = "response"
    drill: bool = False


class DispatchIn(_In):
    org_id: RowRef
    assignee: Username | None = None
    due_s: int | None = Field(None, ge=1, le=365 * 86400)


class NoteIn(_In):
    note: Note | None = None


class ResolveIn(_In):
    note: Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S")]


class ConfirmIn(_In):
    rating: int = Field(ge=1, le=5)
    comment: Note | None = None


class ReasonIn(_In):
    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


class CloseIn(_In):
    override_reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")] | None = (
        None
    )


class CommentIn(_In):
    text: Annotated[str, Field(min_length=1, max_length=4000, pattern=r"\S")]


class PhotoIn(_In):
    photo_b64: PhotoB64
    photo_type: PhotoType


class WhistleIn(_In):
    departments: list[RowRef] = Field(min_length=1, max_length=20)
    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S")]


class StageReportIn(_In):
    stage: Stage
    note: Note | None = None


class TimelineEntry(_Out):
    ts: datetime
    actor: str
    action: str
    detail: dict[str, Any]


class PhotoRef(_Out):
    id: int
    uploaded_by: str
    ts: datetime


class WhistleOut(_Out):
    id: int
    incident_id: int
    org_id: int
    org_name: str
    org_name_en: str | None = Field(None, description="The department's English name, if any")
    blown_at: datetime
    blown_by: str
    reason: str
    auto: bool
    ack_due: datetime
    arrive_due: datetime
    resolve_due: datetime
    acked_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None
    reminders: int
    overdue_stage: Stage | None
    escalated_stage: Stage | None


class IncidentOut(_Out):
    id: int
    site: str
    title: str
    category: str
    building: str | None
    zone: str | None
    location: str | None
    description: str | None
    source: str
    reporter: str | None
    created_by: str
    state: State
    severity: str
    phase: str
    drill: bool
    org_id: int | None
    org_name: str | None
    org_name_en: str | None = Field(None, description="The organisation's English name, if any")
    assignee: str | None
    created_at: datetime
    due_at: datetime | None
    dispatched_at: datetime | None
    accepted_at: datetime | None
    arrived_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    cancelled_at: datetime | None
    deadline_missed_at: datetime | None
    disposal_note: str | None
    rating: int | None
    resident_comment: str | None
    confirmed_at: datetime | None
    overdue: bool


class IncidentDetail(IncidentOut):
    timeline: list[TimelineEntry]
    whistles: list[WhistleOut]
    alert_ids: list[int]
    photos: list[PhotoRef]
    allowed_actions: list[str]

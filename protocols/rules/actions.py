"""What the evaluator asks for: raise or clear an alert, send a command, notify.

Actions are data. The cloud turns them into alert rows, MQTT commands and messages; the edge
turns ``SendCommand`` into local driver calls. Targets are selectors (kind + zone), never
concrete devices: the caller resolves them with its registry.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from protocols.kinds import DeviceKind
from protocols.rules.language import Scope, Severity, SubjectType
from protocols.rules.observations import Observation


class ActionModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rule_id: str
    site: str
    subject: str = Field(description="Device, zone or door id the condition is about")
    subject_type: SubjectType
    ts: datetime = Field(description="When the condition changed (observation or timer time)")

    @property
    def key(self) -> tuple[str, str, str]:
        """``(rule_id, site, subject)``: at most one active alert per key."""
        return (self.rule_id, self.site, self.subject)


class RaiseAlert(ActionModel):
    type: Literal["raise_alert"] = "raise_alert"
    severity: Severity
    title_zh: str
    title_en: str
    zone: str | None = None
    building: str | None = None
    device: str | None = Field(None, description="The device whose data raised it")
    evidence: tuple[Observation, ...] = Field(description="The observations that caused it")


class ClearAlert(ActionModel):
    """The condition no longer holds. The alert's lifecycle (acknowledge, close) is the cloud's."""

    type: Literal["clear_alert"] = "clear_alert"
    evidence: tuple[Observation, ...] = ()
    reason: str = Field(description="cleared | no_data_resumed | window_expired | clear_on")


class CommandTarget(BaseModel):
    """Devices to command, resolved by the caller: ``kind`` within ``scope`` of the subject."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: str
    kind: DeviceKind
    scope: Scope
    zone: str | None = None
    building: str | None = None
    device: str | None = None
    tags: tuple[str, ...] = ()


class SendCommand(ActionModel):
    type: Literal["send_command"] = "send_command"
    name: str
    target: CommandTarget
    params: dict[str, str | bool | float] = Field(default_factory=dict)
    on_clear: bool = False


class Notify(ActionModel):
    type: Literal["notify"] = "notify"
    channels: tuple[str, ...]
    severity: Severity
    title_zh: str
    title_en: str
    on_clear: bool = False


Action = Annotated[RaiseAlert | ClearAlert | SendCommand | Notify, Field(discriminator="type")]

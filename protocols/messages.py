"""Payload models: one frozen, strict pydantic model per message type.

Every uplink message (gateway → cloud) except the gateway state carries the :class:`Envelope`
fields: a message id for dedup, the gateway's boot id and a per-boot sequence number for gap
detection, the event time, the ``historical`` flag for replayed data and the schema version.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from protocols.ids import Ident

SCHEMA_VERSION: Literal[1] = 1
MAX_READINGS = 1000
MAX_THUMBNAIL_BYTES = 20 * 1024

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$", max_length=64)]
"""Lower-case dotted names for metrics, event types and commands, e.g. ``door.open``."""
# Free text never carries NUL: PostgreSQL cannot store it, and no sensor or person needs it.
NO_NUL = r"^[^\x00]*$"
Text = Annotated[str, Field(max_length=500, pattern=NO_NUL)]

MsgId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_\-]{8,64}$")]
Scalar = Annotated[float, Field(allow_inf_nan=False)] | bool
AttrValue = (
    Annotated[str, Field(pattern=NO_NUL)]
    | bool
    | Annotated[float, Field(allow_inf_nan=False)]
    | None
)
Attrs = Annotated[dict[Name, AttrValue], Field(max_length=32)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


class Envelope(Model):
    v: Literal[1] = Field(SCHEMA_VERSION, description="Schema version")
    msg_id: MsgId = Field(description="Unique per message, stable across retries: the dedup key")
    boot_id: MsgId = Field(description="Changes on every start of the gateway agent")
    seq: int = Field(
        ge=0, description="Per-boot sequence number, assigned when the message is made"
    )
    ts: AwareDatetime = Field(description="Event time with time zone (UTC recommended)")
    historical: bool = Field(
        False, description="True when replayed from the outbox after an outage"
    )


class GatewayStatus(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"


class GatewayState(Model):
    """Retained on ``state``: the birth message on connect, and the last will "offline"."""

    v: Literal[1] = SCHEMA_VERSION
    status: GatewayStatus
    boot_id: MsgId
    ts: AwareDatetime
    agent_version: Annotated[str, Field(max_length=32, pattern=NO_NUL)] | None = None
    reason: Text | None = Field(None, description="Why offline: 'will', 'shutdown', …")


class Reading(Model):
    device: Ident
    metric: Name
    value: Scalar
    unit: Annotated[str, Field(max_length=16, pattern=NO_NUL)] | None = None
    ts: AwareDatetime


class Telemetry(Envelope):
    """Many readings per message: a gateway batches its sensors."""

    readings: Annotated[tuple[Reading, ...], Field(min_length=1, max_length=MAX_READINGS)]


class EventPriority(StrEnum):
    """Outbox lane and ingest priority. Safety events are never dropped by the edge."""

    SAFETY = "safety"
    NORMAL = "normal"


class DeviceEvent(Envelope):
    """Something happened at one device: ``smoke.alarm``, ``door.opened``, ``sos.pressed``…"""

    device: Ident
    event: Name
    priority: EventPriority = EventPriority.NORMAL
    value: Scalar | None = None
    attrs: Attrs = Field(default_factory=dict)


class AccessKind(StrEnum):
    DECISION = "decision"
    UNKNOWN_FACE = "unknown_face"
    FORCED_OPEN = "forced_open"
    HELD_OPEN = "held_open"
    TAILGATING = "tailgating"
    DOOR_STATE = "door_state"


class AccessDecision(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"
    ALARM = "alarm"  # e.g. block-listed person: a guard must confirm; the door stays shut
    NONE = "none"  # alarms and state changes that are not a decision


class AccessMethod(StrEnum):
    FACE = "face"
    CARD = "card"
    PIN = "pin"
    QR = "qr"
    MANUAL = "manual"
    NONE = "none"


class AccessEvent(Envelope):
    door: Ident
    kind: AccessKind
    decision: AccessDecision = AccessDecision.NONE
    reason: Name = Field(description="Machine-readable reason, e.g. allow_list, block_list")
    method: AccessMethod = AccessMethod.NONE
    camera: Ident | None = None
    person_id: Ident | None = None
    person_name: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None
    distance: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    liveness: Annotated[float, Field(ge=0, le=1)] | None = None
    thumbnail_jpeg_b64: (
        Annotated[str, Field(max_length=(MAX_THUMBNAIL_BYTES * 4) // 3 + 4)] | None
    ) = Field(None, description="Base64 JPEG, at most 20 KB before encoding")
    attrs: Attrs = Field(default_factory=dict)


class Command(Model):
    """Cloud → gateway on ``cmd``. Idempotent by ``cmd_id``; refused after ``expires_at``."""

    v: Literal[1] = SCHEMA_VERSION
    cmd_id: MsgId
    name: Name = Field(description="door.open, door.lock, siren.on, siren.off, config.update, …")
    target: Ident | None = Field(None, description="Device or door the command is for")
    params: Attrs = Field(default_factory=dict)
    issued_at: AwareDatetime
    expires_at: AwareDatetime
    issued_by: Annotated[str, Field(max_length=64, pattern=NO_NUL)] | None = None

    @model_validator(mode="after")
    def _expiry_after_issue(self) -> Command:
        if self.expires_at <= self.issued_at:
            raise ValueError("expires_at must be after issued_at")
        return self

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at


class AckStatus(StrEnum):
    OK = "ok"
    DUPLICATE = "duplicate"  # already executed: the earlier result stands
    REFUSED = "refused"  # expired, unknown, not allowed — never executed
    FAILED = "failed"  # tried and failed


class CommandAck(Envelope):
    cmd_id: MsgId
    status: AckStatus
    reason: Text | None = None
    result: Attrs = Field(default_factory=dict)


class GatewayConfig(Model):
    """Retained on ``config``: what the cloud wants this gateway to run.

    ``rules`` is a rule set in the shared rule language (see ``protocols.rules``), kept as
    its plain JSON form here so that the contract stays readable by third parties.
    """

    v: Literal[1] = SCHEMA_VERSION
    version: int = Field(ge=0, description="Monotonic; a gateway ignores an older version")
    issued_at: AwareDatetime
    rules: Annotated[tuple[dict[str, object], ...], Field(max_length=500)] = ()
    gallery_version: int | None = Field(None, ge=0)
    settings: Attrs = Field(default_factory=dict)


UplinkMessage = GatewayState | Telemetry | DeviceEvent | AccessEvent | CommandAck
DownlinkMessage = Command | GatewayConfig
Message = UplinkMessage | DownlinkMessage

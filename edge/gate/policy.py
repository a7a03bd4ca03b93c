"""Door policy: a pure function of (configuration, state, request) → decision and new state.

Nothing here touches a camera, a lock or the clock: the caller passes the time. Every decision
carries a machine-readable reason (the ``AccessEvent.reason`` names, listed in :class:`Reason`).

Rules, in order: block list (alarm, never opens) → identity (a revoked pass's code is refused
as ``pass_revoked``) → door methods → liveness → visitor pass or allow list → schedule → second
factor → anti-passback. A door always accepts at least one non-face method (card, PIN or QR
code); the configuration refuses a door without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from protocols.ids import Ident
from protocols.messages import AccessDecision, AccessMethod
from protocols.passes import code_digest

Weekday = Annotated[int, Field(ge=0, le=6, description="0 = Monday")]


class Reason(StrEnum):
    ALLOW_LIST = "allow_list"
    VISITOR_PASS = "visitor_pass"
    BLOCK_LIST = "block_list"
    UNKNOWN_FACE = "unknown_face"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    NOT_ALLOWED = "not_allowed"
    METHOD_NOT_ACCEPTED = "method_not_accepted"
    OUTSIDE_SCHEDULE = "outside_schedule"
    PASS_EXPIRED = "pass_expired"
    PASS_NOT_YET_VALID = "pass_not_yet_valid"
    PASS_USED_UP = "pass_used_up"
    PASS_REVOKED = "pass_revoked"
    PASS_WRONG_DOOR = "pass_wrong_door"
    SECOND_FACTOR_REQUIRED = "second_factor_required"
    SECOND_FACTOR_MISMATCH = "second_factor_mismatch"
    ANTI_PASSBACK = "anti_passback"
    LIVENESS_FAILED = "liveness_failed"
    NOT_ENOUGH_FRAMES = "not_enough_frames"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


NON_FACE = frozenset({AccessMethod.CARD, AccessMethod.PIN, AccessMethod.QR})


class TimeWindow(_Model):
    days: tuple[Weekday, ...] = Field((0, 1, 2, 3, 4, 5, 6), description="Weekdays, 0 = Monday")
    start: time = Field(time(0, 0), description="Local start time, inclusive")
    end: time = Field(time(23, 59, 59), description="Local end time, inclusive")

    def contains(self, at: datetime) -> bool:
        moment = at.timetz().replace(tzinfo=None)
        if at.weekday() not in self.days:
            return False
        if self.start <= self.end:
            return self.start <= moment <= self.end
        return moment >= self.start or moment <= self.end  # overnight window


class DoorConfig(_Model):
    door: Ident
    methods: frozenset[AccessMethod] = Field(
        frozenset({AccessMethod.FACE, AccessMethod.CARD, AccessMethod.PIN, AccessMethod.QR}),
        description="Methods this door accepts; at least one non-face method is required",
    )
    second_factor: Literal["card", "pin", "qr"] | None = Field(
        None, description="If set, a face match must be confirmed with this credential"
    )
    liveness: bool = Field(True, description="Require a live face (blink/motion) for FACE")
    liveness_threshold: float = Field(0.5, ge=0, le=1)
    thresholds: Mapping[str, float] = Field(
        default_factory=dict, description="Per-camera match distance threshold"
    )
    default_threshold: float = Field(0.5, gt=0, le=1.5)
    schedules: Mapping[str, tuple[TimeWindow, ...]] = Field(
        default_factory=dict,
        description="Group → windows when that group may pass; a group absent here may not",
    )
    direction: Direction | None = Field(None, description="Reader direction for anti-passback")
    passback_area: Ident | None = Field(
        None, description="Paired in/out readers share an area: in, out, in… enforced"
    )

    @model_validator(mode="after")
    def _non_face_alternative(self) -> DoorConfig:
        if not self.methods & NON_FACE:
            raise ValueError(
                f"door {self.door}: methods must include card, pin or qr (a non-face way in)"
            )
        if self.passback_area is not None and self.direction is None:
            raise ValueError(f"door {self.door}: passback_area needs a direction")
        if self.second_factor is not None and AccessMethod(self.second_factor) not in self.methods:
            raise ValueError(f"door {self.door}: second_factor must be one of its methods")
        return self

    def threshold(self, camera: str | None) -> float:
        if camera is not None and camera in self.thresholds:
            return self.thresholds[camera]
        return self.default_threshold


class PersonConfig(_Model):
    person_id: Ident
    name: str | None = None
    groups: frozenset[str] = frozenset({"residents"})
    credentials: Mapping[Literal["card", "pin", "qr"], str] = Field(default_factory=dict)


class VisitorPass(_Model):
    pass_id: Ident
    person_id: Ident | None = Field(None, description="Face of the visitor, if enrolled")
    code: str | None = Field(None, description="QR code / PIN value of the pass")
    doors: frozenset[str]
    valid_from: AwareDatetime
    valid_until: AwareDatetime
    max_uses: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _window(self) -> VisitorPass:
        if self.valid_until <= self.valid_from:
            raise ValueError(f"pass {self.pass_id}: valid_until must be after valid_from")
        if self.person_id is None and self.code is None:
            raise ValueError(f"pass {self.pass_id}: needs a person_id or a code")
        return self


class PolicyConfig(_Model):
    doors: Mapping[str, DoorConfig]
    people: Mapping[str, PersonConfig] = Field(default_factory=dict, description="Allow list")
    blocked: frozenset[str] = Field(frozenset(), description="Block list of person ids")
    passes: tuple[VisitorPass, ...] = ()
    revoked: Mapping[str, Ident] = Field(
        default_factory=dict,
        description="Revoked passes: code_digest(code) → pass id (refused as pass_revoked)",
    )


class PolicyState(_Model):
    """What the policy remembers between decisions."""

    pass_uses: Mapping[str, int] = Field(default_factory=dict)
    last_direction: Mapping[str, Direction] = Field(
        default_factory=dict, description="'area/person' → last direction granted"
    )


class Credential(_Model):
    kind: Literal["card", "pin", "qr"]
    value: str


class AccessRequest(_Model):
    door: Ident
    at: AwareDatetime
    method: AccessMethod
    person_id: str | None = Field(None, description="Face match (FACE) — None = unknown face")
    credential: Credential | None = None
    camera: str | None = None
    distance: float | None = None
    liveness: float | None = None
    frames: int = Field(1, ge=0, description="Frames that voted for this identity")


class Decision(_Model):
    decision: AccessDecision
    reason: Reason
    person_id: str | None = None
    method: AccessMethod
    door: str
    pass_id: str | None = None

    @property
    def opens(self) -> bool:
        return self.decision is AccessDecision.GRANTED

    @property
    def alert(self) -> bool:
        return self.decision is AccessDecision.ALARM


MIN_FACE_FRAMES = 2
"""A door never opens on a single frame: a face identity needs at least this many votes."""


def _deny(req: AccessRequest, reason: Reason, person: str | None = None) -> Decision:
    """A refusal; a code-only visitor pass (``pass:ID``) is reported as its pass id."""
    pass_id = None
    if person is not None and person.startswith("pass:"):
        pass_id, person = person.removeprefix("pass:"), None
    return Decision(
        decision=AccessDecision.DENIED,
        reason=reason,
        person_id=person,
        method=req.method,
        door=req.door,
        pass_id=pass_id,
    )


def _identify(cfg: PolicyConfig, req: AccessRequest) -> str | Reason:
    if req.method is AccessMethod.FACE:
        return req.person_id if req.person_id is not None else Reason.UNKNOWN_FACE
    cred = req.credential
    if cred is None or cred.kind != req.method.value:
        return Reason.UNKNOWN_CREDENTIAL
    for person in cfg.people.values():
        if person.credentials.get(cred.kind) == cred.value:
            return person.person_id
    for visitor in cfg.passes:
        if visitor.code is not None and visitor.code == cred.value and cred.kind in ("qr", "pin"):
            return f"pass:{visitor.pass_id}"
    return Reason.UNKNOWN_CREDENTIAL


def _revoked(cfg: PolicyConfig, req: AccessRequest) -> str | None:
    """The id of the revoked pass whose code this is, if any."""
    cred = req.credential
    if not cfg.revoked or cred is None or cred.kind not in ("qr", "pin"):
        return None
    if cred.kind != req.method.value:
        return None
    return cfg.revoked.get(code_digest(cred.value))


def _pass_check(visitor: VisitorPass, req: AccessRequest, state: PolicyState) -> Reason | None:
    if req.door not in visitor.doors:
        return Reason.PASS_WRONG_DOOR
    if req.at < visitor.valid_from:
        return Reason.PASS_NOT_YET_VALID
    if req.at > visitor.valid_until:
        return Reason.PASS_EXPIRED
    if state.pass_uses.get(visitor.pass_id, 0) >= visitor.max_uses:
        return Reason.PASS_USED_UP
    return None


def decide(
    cfg: PolicyConfig, state: PolicyState, req: AccessRequest
) -> tuple[Decision, PolicyState]:
    """Decide one request. Returns the decision and the state to keep (changed only on grant)."""
    door = cfg.doors.get(req.door)
    if door is None:
        return _deny(req, Reason.NOT_ALLOWED), state
    who = _identify(cfg, req)
    if who is Reason.UNKNOWN_CREDENTIAL and (revoked := _revoked(cfg, req)) is not None:
        return _deny(req, Reason.PASS_REVOKED, f"pass:{revoked}"), state
    if isinstance(who, Reason):
        return _deny(req, who), state
    if who in cfg.blocked:
        alarm = Decision(
            decision=AccessDecision.ALARM,
            reason=Reason.BLOCK_LIST,
            person_id=who,
            method=req.method,
            door=req.door,
        )
        return alarm, state
    if req.method not in door.methods:
        return _deny(req, Reason.METHOD_NOT_ACCEPTED, who), state
    if req.method is AccessMethod.FACE:
        if req.frames < MIN_FACE_FRAMES:
            return _deny(req, Reason.NOT_ENOUGH_FRAMES, who), state
        if door.liveness and (req.liveness is None or req.liveness < door.liveness_threshold):
            return _deny(req, Reason.LIVENESS_FAILED, who), state

    visitor = _visitor_pass(cfg, who, req, state)
    if isinstance(visitor, Reason):
        return _deny(req, visitor, who), state
    if visitor is None:
        person = cfg.people.get(who)
        if person is None:
            return _deny(req, Reason.NOT_ALLOWED, who), state
        if not _in_schedule(door, person, req.at):
            return _deny(req, Reason.OUTSIDE_SCHEDULE, who), state
        reason = Reason.ALLOW_LIST
        if req.method is AccessMethod.FACE and door.second_factor is not None:
            cred = req.credential
            if cred is None or cred.kind != door.second_factor:
                return _deny(req, Reason.SECOND_FACTOR_REQUIRED, who), state
            if person.credentials.get(cred.kind) != cred.value:
                return _deny(req, Reason.SECOND_FACTOR_MISMATCH, who), state
    else:
        reason = Reason.VISITOR_PASS

    person_key = who if visitor is None else (visitor.person_id or visitor.pass_id)
    passback_key = f"{door.passback_area}/{person_key}" if door.passback_area else None
    if passback_key is not None and state.last_direction.get(passback_key) == door.direction:
        return _deny(req, Reason.ANTI_PASSBACK, who), state

    uses = dict(state.pass_uses)
    if visitor is not None:
        uses[visitor.pass_id] = uses.get(visitor.pass_id, 0) + 1
    directions = dict(state.last_direction)
    if passback_key is not None and door.direction is not None:
        directions[passback_key] = door.direction
    granted = Decision(
        decision=AccessDecision.GRANTED,
        reason=reason,
        person_id=who if visitor is None else visitor.person_id,
        method=req.method,
        door=req.door,
        pass_id=visitor.pass_id if visitor is not None else None,
    )
    return granted, PolicyState(pass_uses=uses, last_direction=directions)


def _visitor_pass(
    cfg: PolicyConfig, who: str, req: AccessRequest, state: PolicyState
) -> VisitorPass | Reason | None:
    """The pass this identity uses, a refusal reason, or None when it is not a visitor."""
    if who.startswith("pass:"):
        pass_id = who.removeprefix("pass:")
        candidates = [p for p in cfg.passes if p.pass_id == pass_id]
    elif who in cfg.people:
        return None
    else:
        candidates = [p for p in cfg.passes if p.person_id == who]
    if not candidates:
        return None
    refusal: Reason | None = None
    for visitor in candidates:
        refusal = _pass_check(visitor, req, state)
        if refusal is None:
            return visitor
    return refusal


def _in_schedule(door: DoorConfig, person: PersonConfig, at: datetime) -> bool:
    if not door.schedules:
        return True  # no schedules on this door: every allowed group, any time
    for group in person.groups:
        if any(w.contains(at) for w in door.schedules.get(group, ())):
            return True
    return False

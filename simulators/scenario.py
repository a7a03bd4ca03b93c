"""Scenario files: a timeline of injected readings, access events and faults, plus the alerts
that must follow. Validated at load; an error names the file and the field.

    name: fire-in-building
    site: ../sites/demo.yaml          # a site file (cloud.registry.sitefile), relative to this file
    speed: 1                          # simulated seconds per real second
    steps:
      - at: 0s
        force: {device: smoke-b1-f3, metric: smoke, value: true}
      - at: 20s
        ramp: {device: heat-b1-f3, metric: temperature, to: 75, over: 30s}
    expect:
      - {rule: smoke-alarm, severity: critical, subject: smoke-b1-f3, within: 30s}

Each step has ``at`` (simulated time from the start of the timeline) and exactly one action:
``force``, ``release``, ``ramp``, ``fault``, ``access``, ``camera`` or ``wire``.
"""

from __future__ import annotations

import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from protocols.ids import Ident
from protocols.messages import AccessDecision, AccessKind, AccessMethod, Name
from simulators.clock import ClockMode
from simulators.errors import SimulatorError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d)")


def parse_duration(value: object) -> float:
    """``90``, ``"90s"``, ``"1m30s"``, ``"24h"``, ``"500ms"`` → seconds (a float)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '30s', '10m', '24h'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or text like '30s', '10m', '24h'")
    text = value.strip().replace(" ", "")
    pos, total = 0, 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"bad duration {value!r}: use e.g. '30s', '10m', '1h30m', '24h'")
    return total


Duration = Annotated[float, BeforeValidator(parse_duration)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Force(_Model):
    """Override one metric of one device (``value: null`` is not allowed: use ``release``)."""

    device: Ident
    metric: Name
    value: float | bool


class Release(_Model):
    """Give a device back its natural signal: one metric, or every override."""

    device: Ident
    metric: Name | None = None


class Ramp(_Model):
    """Move an analog metric linearly to ``to`` over ``over`` (from its current natural value
    unless ``start`` is given), then hold it there until released."""

    device: Ident
    metric: Name
    to: float
    over: Duration = Field(gt=0)
    start: float | None = None


class FaultKind(StrEnum):
    OUTAGE = "outage"  # the gateway's uplink drops: MQTT disconnected, the outbox fills
    CLOCK_SKEW = "clock_skew"  # the gateway's clock is off by ``skew`` seconds
    DEAD_BATTERY = "dead_battery"
    STUCK = "stuck"
    NOISE_BURST = "noise_burst"
    OFFLINE = "offline"  # one device stops reporting


_GATEWAY_FAULTS = {FaultKind.OUTAGE, FaultKind.CLOCK_SKEW}


class FaultStep(_Model):
    kind: FaultKind
    gateway: Ident | None = None
    device: Ident | None = None
    metric: Name | None = None
    duration: Duration | None = Field(None, gt=0, description="None: until the scenario ends")
    skew: Duration | float = Field(0.0, description="clock_skew: seconds (may be negative)")
    magnitude: float = Field(5.0, gt=0, description="noise_burst: how many times the noise")

    @model_validator(mode="after")
    def _target(self) -> FaultStep:
        if self.kind in _GATEWAY_FAULTS and self.gateway is None:
            raise ValueError(f"fault {self.kind.value} needs 'gateway'")
        if self.kind not in _GATEWAY_FAULTS and self.device is None:
            raise ValueError(f"fault {self.kind.value} needs 'device'")
        return self


class AccessStep(_Model):
    """A pre-decided access event from a virtual camera (cheap mode), labelled simulated."""

    gateway: Ident
    door: Ident
    kind: AccessKind
    decision: AccessDecision = AccessDecision.NONE
    reason: Name
    method: AccessMethod = AccessMethod.NONE
    camera: Ident | None = None
    person_id: Ident | None = None
    person_name: Annotated[str, Field(max_length=64)] | None = None
    repeat: int = Field(1, ge=1, le=100)
    every: Duration = Field(5.0, gt=0, description="Spacing of repeats (simulated)")


class CameraStep(_Model):
    """Feed an image folder or a video file through the real gate pipeline (edge/gate)."""

    gateway: Ident
    camera: Ident
    door: Ident
    source: str = Field(description="Image folder or video file; relative to the scenario file")
    gallery: str | None = Field(None, description="Face gallery file for the gate pipeline")
    fps: float = Field(5.0, gt=0, le=60, description="Frames fed per second (at most)")
    every: int = Field(1, ge=1, le=100, description="Video: feed every N-th frame")


class Malformed(StrEnum):
    BAD_TOPIC = "bad_topic"
    NOT_JSON = "not_json"
    NOT_UTF8 = "not_utf8"
    SCHEMA = "schema"
    TOO_LARGE = "too_large"
    WRONG_DIRECTION = "wrong_direction"


class WireStep(_Model):
    """Messages a correct gateway never sends, published straight onto the gateway's topics:
    malformed payloads, duplicated messages (same msg_id twice) and reordered sequences."""

    gateway: Ident
    malformed: tuple[Malformed, ...] = ()
    duplicate: int = Field(0, ge=0, le=1000, description="Telemetry messages sent twice each")
    reorder: int = Field(0, ge=0, le=1000, description="Telemetry messages sent in reverse order")
    device: Ident | None = Field(
        None, description="Device the duplicated/reordered readings are of"
    )
    metric: Name | None = None
    value: float | bool | None = None

    @model_validator(mode="after")
    def _something(self) -> WireStep:
        if not (self.malformed or self.duplicate or self.reorder):
            raise ValueError("wire step needs 'malformed', 'duplicate' or 'reorder'")
        if (self.duplicate or self.reorder) and (self.device is None or self.metric is None):
            raise ValueError("'duplicate' and 'reorder' need 'device' and 'metric'")
        return self


_ACTIONS = ("force", "release", "ramp", "fault", "access", "camera", "wire")


class Step(_Model):
    at: Duration = Field(description="Simulated time from the start of the timeline")
    note: str | None = None
    force: Force | None = None
    release: Release | None = None
    ramp: Ramp | None = None
    fault: FaultStep | None = None
    access: AccessStep | None = None
    camera: CameraStep | None = None
    wire: WireStep | None = None

    @model_validator(mode="after")
    def _one_action(self) -> Step:
        given = [a for a in _ACTIONS if getattr(self, a) is not None]
        if len(given) != 1:
            raise ValueError(f"a step needs exactly one of {', '.join(_ACTIONS)} (got {given})")
        return self

    @property
    def action(self) -> str:
        return next(a for a in _ACTIONS if getattr(self, a) is not None)


Severity = Literal["critical", "major", "minor", "warning", "info"]


class ExpectedAlert(_Model):
    rule: Annotated[str, Field(min_length=1, max_length=100)]
    severity: Severity
    subject: Annotated[str, Field(min_length=1, max_length=100)]
    after: Duration = Field(0.0, description="Timeline time the deadline counts from")
    within: Duration = Field(gt=0, description="Deadline after 'after', simulated time")
    at_most: int | None = Field(
        None, ge=1, description="No more than this many distinct alerts of (rule, subject)"
    )

    @property
    def deadline(self) -> float:
        return self.after + self.within


class ExpectedActuator(_Model):
    """An actuator of a simulated gateway that must act: a door lock ``released`` (evacuation
    doors on a fire) or a siren ``on``, whether by the cloud's command or the edge's own rule."""

    gateway: Ident
    device: Ident
    state: Literal["released", "on"]
    after: Duration = 0.0
    within: Duration = Field(gt=0)

    @property
    def deadline(self) -> float:
        return self.after + self.within


class Forbidden(_Model):
    """An alert that must not appear (any severity); ``subject`` None means any subject."""

    rule: Annotated[str, Field(min_length=1, max_length=100)]
    subject: Annotated[str, Field(min_length=1, max_length=100)] | None = None


_LOCAL_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"


class ClockSpec(_Model):
    mode: ClockMode = ClockMode.REALTIME
    speed: float = Field(1.0, gt=0, le=100_000)
    start_local: Annotated[str, Field(pattern=_LOCAL_TIME)] | None = Field(
        None,
        description="Start the simulated clock at the next HH:MM local time (mode 'ahead'), "
        "e.g. '02:30' for a scenario at night",
    )
    tz_offset_h: float = Field(8.0, ge=-12, le=14, description="Local time offset for start_local")
    settle: Duration = Field(
        5.0, description="Simulated time the site runs before the timeline starts"
    )

    @model_validator(mode="after")
    def _speed(self) -> ClockSpec:
        if self.mode is ClockMode.REALTIME and (self.speed != 1.0 or self.start_local):
            raise ValueError("speed and start_local need mode 'ahead'")
        return self

    def start_at(self, wall: float) -> float:
        """Simulated epoch time of the clock's start for a run beginning at ``wall``."""
        if self.start_local is None:
            return wall
        hours, minutes = (int(x) for x in self.start_local.split(":"))
        offset = self.tz_offset_h * 3600.0
        local = wall + offset
        target = (local // 86400.0) * 86400.0 + hours * 3600.0 + minutes * 60.0
        if target < local:
            target += 86400.0
        return target - offset


class Scenario(_Model):
    name: Ident
    description: str = ""
    site: str = Field(description="Site file path, relative to the scenario file")
    clock: ClockSpec = ClockSpec()
    steps: tuple[Step, ...] = ()
    expect: tuple[ExpectedAlert, ...] = ()
    expect_actuators: tuple[ExpectedActuator, ...] = ()
    allow: tuple[str, ...] = Field(
        (), description="Rules whose critical alerts may appear without being expected"
    )
    forbid: tuple[Forbidden, ...] = Field((), description="Alerts that must not appear")
    grace: Duration = Field(10.0, description="Simulated time kept running after the last deadline")
    path: Path | None = Field(None, exclude=True, description="Where it was loaded from")

    @model_validator(mode="after")
    def _ordered(self) -> Scenario:
        times = [s.at for s in self.steps]
        if times != sorted(times):
            raise ValueError("steps must be in time order ('at' never decreases)")
        return self

    @property
    def duration(self) -> float:
        """Simulated length of the timeline: the last step, deadline or ramp end, plus grace."""
        ends = [0.0]
        ends += [s.at + (s.ramp.over if s.ramp else 0.0) for s in self.steps]
        ends += [s.at + s.fault.duration for s in self.steps if s.fault and s.fault.duration]
        ends += [e.deadline for e in self.expect]
        return max(ends) + self.grace

    def references(self) -> list[tuple[str, str, str]]:
        """(where, "device"|"gateway", id) of everything the steps name, for checking."""
        out: list[tuple[str, str, str]] = []
        for i, step in enumerate(self.steps):
            where = f"steps.{i}.{step.action}"
            action = getattr(step, step.action)
            for what in ("device", "gateway"):
                value = getattr(action, what, None)
                if isinstance(value, str):
                    out.append((where, what, value))
        for i, act in enumerate(self.expect_actuators):
            out.append((f"expect_actuators.{i}", "gateway", act.gateway))
            out.append((f"expect_actuators.{i}", "device", act.device))
        return out

    def resolve(self, relative: str) -> Path:
        """A path given in the scenario, relative to the scenario file."""
        p = Path(relative)
        if p.is_absolute() or self.path is None:
            return p
        return (self.path.parent / p).resolve()


def _describe(exc: ValidationError) -> str:
    parts = []
    for e in exc.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(p) for p in e["loc"]) or "file"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


def parse_scenario(data: Any, source: str = "<scenario>", path: Path | None = None) -> Scenario:
    if not isinstance(data, dict):
        raise SimulatorError("a scenario is a mapping (name, site, steps, expect…)", source)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise SimulatorError(_describe(exc), source) from exc
    return scenario.model_copy(update={"path": path}) if path is not None else scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; :class:`SimulatorError` names the file and field."""
    p = Path(path).resolve()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise SimulatorError(str(exc), str(path)) from exc
    return parse_scenario(data, str(path), p)


LIBRARY = Path(__file__).resolve().parent / "scenarios"
SITES = Path(__file__).resolve().parent / "sites"


def library() -> list[Path]:
    """The starter scenarios shipped with Linli."""
    return sorted(LIBRARY.glob("*.yaml"))

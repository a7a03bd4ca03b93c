"""The edge agent's configuration: one pydantic model, loaded from a YAML or TOML file.

Unknown keys and bad values fail at start with a message naming the field
(``drivers.0.devices.2.kind: Input should be 'smoke', 'heat', …``). See docs/edge.md for a
commented example.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge.errors import ConfigError
from edge.gate.settings import GateSettings
from edge.reporting import ReportMode, ReportPolicy
from protocols.ids import Ident
from protocols.kinds import DeviceKind

MAX_INFLIGHT = 60_000  # paho's packet ids are 16 bits: it fails past ~65k outstanding QoS1


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttProtocol(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


class BrokerConfig(Strict):
    host: str = Field("127.0.0.1", description="MQTT broker host name or address")
    port: int = Field(1883, ge=1, le=65535)
    protocol: MqttProtocol = Field(MqttProtocol.V5, description='"5" or "3.1.1"')
    client_id: str | None = Field(
        None, max_length=128, description="Default: linli-edge-SITE-GATEWAY (stable: sessions)"
    )
    username: str | None = None
    password: str | None = None
    password_file: Path | None = Field(None, description="Read the password from this file")
    tls: bool = False
    ca_file: Path | None = None
    keepalive: int = Field(30, ge=5, le=3600, description="Seconds")
    session_expiry: int = Field(
        86_400, ge=0, description="MQTT 5 session expiry (s): queued commands survive that long"
    )
    reconnect_min: float = Field(0.5, gt=0, le=60, description="First reconnect delay (s)")
    reconnect_max: float = Field(30.0, gt=0, le=3600, description="Reconnect delay cap (s)")
    connect_timeout: float = Field(10.0, gt=0, le=120)

    @model_validator(mode="after")
    def _delays(self) -> BrokerConfig:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max must be >= reconnect_min")
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        return self


class Synchronous(StrEnum):
    FULL = "full"  # every message is on disk before put() returns: survives power loss
    NORMAL = "normal"  # survives a crash or kill -9; a power cut may lose the last moments


class OutboxConfig(Strict):
    path: Path | None = Field(None, description="SQLite file; default STATE_DIR/edge.db")
    budget_mb: float = Field(
        64.0,
        ge=0.25,
        description="Disk budget of the outbox database; over it telemetry is dropped",
    )
    batch: int = Field(200, ge=1, le=5000, description="Rows read per dispatch round")
    max_inflight: int = Field(
        1000, ge=1, le=MAX_INFLIGHT, description="QoS1 messages published and not yet acked"
    )
    synchronous: Synchronous = Synchronous.FULL
    max_readings: int = Field(500, ge=1, le=1000, description="Readings per telemetry message")
    drain_timeout: float = Field(3.0, ge=0, le=60, description="Wait for acks on shutdown (s)")
    historical_after: float = Field(
        5.0,
        ge=0,
        description="A message made while offline and sent this much later is historical (s)",
    )


class ReportConfig(Strict):
    """When a reading is sent: on change (beyond a deadband), periodically, or either."""

    mode: ReportMode = ReportMode.CHANGE_OR_PERIOD
    deadband: float = Field(0.0, ge=0, description="Change smaller than this is not a change")
    period: float = Field(300.0, gt=0, description="Seconds between periodic reports")

    def policy(self) -> ReportPolicy:
        return ReportPolicy(self.mode, self.deadband, self.period)


class SimulatedDevice(Strict):
    id: Ident
    kind: DeviceKind
    seed: int = 0
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)


class DriverBase(Strict):
    name: Ident = Field(description="Unique per gateway; the supervised task is driver:NAME")
    interval: float = Field(1.0, gt=0, le=3600, description="Seconds between reads")
    report: ReportConfig | None = Field(None, description="Overrides the gateway's report")


class SimulatedDriverConfig(DriverBase):
    type: Literal["simulated"]
    devices: list[SimulatedDevice] = Field(min_length=1)
    model: str = Field(
        "simulators.devices:make_device",
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$",
        description="module:function that makes a VirtualDevice (kind, device_id, seed=…)",
    )


class GpioDevice(Strict):
    id: Ident
    kind: DeviceKind
    pin: int | str = Field(description="BCM number or gpiozero pin name, e.g. 17 or 'GPIO17'")
    metric: str | None = Field(None, description="Default: the kind's binary metric")
    pull_up: bool = Field(False, description="Internal pull-up: the input is active when low")
    invert: bool = Field(False, description="Report the opposite (normally-closed contacts)")


class GpioDriverConfig(DriverBase):
    type: Literal["gpio"]
    pin_factory: Literal["default", "mock"] = Field(
        "default", description="'mock' uses gpiozero's MockFactory (tests, development)"
    )
    devices: list[GpioDevice] = Field(min_length=1)


class RegisterType(StrEnum):
    HOLDING = "holding"
    INPUT = "input"
    COIL = "coil"
    DISCRETE = "discrete"


class ModbusRegister(Strict):
    metric: str
    address: int = Field(ge=0, le=65535)
    type: RegisterType = RegisterType.HOLDING
    signed: bool = False
    scale: float = 1.0
    offset: float = 0.0


class ModbusDevice(Strict):
    id: Ident
    kind: DeviceKind
    unit: int = Field(1, ge=0, le=247, description="Modbus device (slave) id")
    registers: list[ModbusRegister] = Field(min_length=1)


class ModbusDriverConfig(DriverBase):
    type: Literal["modbus"]
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: int = Field(502, ge=1, le=65535)
    serial_port: str | None = Field(None, description="RTU: /dev/ttyUSB0 …")
    baudrate: int = Field(9600, gt=0)
    timeout: float = Field(2.0, gt=0, le=60)
    devices: list[ModbusDevice] = Field(min_length=1)

    @model_validator(mode="after")
    def _rtu_port(self) -> ModbusDriverConfig:
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("transport 'rtu' needs serial_port")
        return self


class SerialDevice(Strict):
    id: Ident
    kind: DeviceKind


class SerialDriverConfig(DriverBase):
    type: Literal["serial"]
    url: str = Field(description="A pyserial URL or device: /dev/ttyUSB0, loop://, /dev/pts/3")
    baudrate: int = Field(9600, gt=0)
    devices: list[SerialDevice] = Field(min_length=1)


DriverConfig = Annotated[
    SimulatedDriverConfig | GpioDriverConfig | ModbusDriverConfig | SerialDriverConfig,
    Field(discriminator="type"),
]


class OutputConfig(Strict):
    type: Literal["simulated", "gpio"] = "simulated"
    pin: int | str | None = None
    pin_factory: Literal["default", "mock"] = "default"
    active_high: bool = True

    @model_validator(mode="after")
    def _pin(self) -> OutputConfig:
        if self.type == "gpio" and self.pin is None:
            raise ValueError("a gpio output needs pin")
        return self


class DoorConfig(Strict):
    id: Ident
    output: OutputConfig = OutputConfig()
    open_seconds: float = Field(5.0, gt=0, le=600, description="door.open relocks after this")


class SirenConfig(Strict):
    id: Ident
    output: OutputConfig = OutputConfig()


class ActuatorsConfig(Strict):
    """Doors and sirens. One siren: ``siren`` + ``siren_id`` (the default: a simulated one);
    several (one per floor, say): ``sirens``, each with its id — a fire rule targets the
    sirens of its zone by id, so a gateway must know every siren it drives."""

    siren: OutputConfig | None = OutputConfig()
    siren_id: Ident = "siren"
    sirens: list[SirenConfig] = Field(default_factory=list)
    doors: list[DoorConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way(self) -> ActuatorsConfig:
        if self.sirens and self.model_fields_set & {"siren", "siren_id"}:
            raise ValueError("give either siren/siren_id or sirens, not both")
        ids = [s.id for s in self.sirens]
        if len(set(ids)) != len(ids):
            raise ValueError("sirens: duplicate id")
        return self

    def siren_list(self) -> list[SirenConfig]:
        """Every siren of the gateway (the single ``siren`` when ``sirens`` is empty)."""
        if self.sirens:
            return list(self.sirens)
        if self.siren is None:
            return []
        return [SirenConfig(id=self.siren_id, output=self.siren)]


class RulesMode(StrEnum):
    OFFLINE = "offline"  # run rule actions locally only while the uplink is down
    ALWAYS = "always"  # run them locally all the time (the cloud may repeat them)


class RulesConfig(Strict):
    enabled: bool = True
    mode: RulesMode = RulesMode.OFFLINE
    file: Path | None = Field(
        None, description="Rule set file until the cloud sends one; default: the default pack"
    )


class HealthConfig(Strict):
    interval: float = Field(60.0, gt=0, le=86_400, description="Seconds between health reports")


class BackoffConfig(Strict):
    initial: float = Field(0.5, gt=0, le=60)
    maximum: float = Field(30.0, gt=0, le=3600)


class EdgeConfig(Strict):
    site: Ident
    gateway: Ident
    zone: Ident | None = Field(
        None, description="Zone of this gateway's devices (rules); default: gateway id"
    )
    building: Ident | None = Field(None, description="Building (rules); default: the zone")
    state_dir: Path = Field(Path("/var/lib/linli-edge"), description="Outbox and command log")
    broker: BrokerConfig = BrokerConfig()
    outbox: OutboxConfig = OutboxConfig()
    report: ReportConfig = ReportConfig()
    drivers: list[DriverConfig] = Field(default_factory=list)
    actuators: ActuatorsConfig = ActuatorsConfig()
    rules: RulesConfig = RulesConfig()
    health: HealthConfig = HealthConfig()
    gates: list[GateSettings] = Field(
        default_factory=list,
        description="Face-recognition gates (docs/gate.md); each runs as the task gate:DOOR",
    )
    restart: BackoffConfig = Field(BackoffConfig(), description="Supervisor restart backoff")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @model_validator(mode="after")
    def _unique_names(self) -> EdgeConfig:
        names = [d.name for d in self.drivers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"driver names must be unique: {sorted(dup)}")
        ids = [dev.id for d in self.drivers for dev in d.devices]
        dup = {i for i in ids if ids.count(i) > 1}
        if dup:
            raise ValueError(f"device ids must be unique: {sorted(dup)}")
        doors = [g.door for g in self.gates]
        dup = {d for d in doors if doors.count(d) > 1}
        if dup:
            raise ValueError(f"gates: one gate per door: {sorted(dup)}")
        known = {d.id for d in self.actuators.doors}
        for i, gate in enumerate(self.gates):
            if gate.door not in known:
                raise ValueError(f"gates.{i}.door: {gate.door!r} is not in actuators.doors")
        return self

    @property
    def db_path(self) -> Path:
        return self.outbox.path or self.state_dir / "edge.db"

    def client_id(self) -> str:
        return self.broker.client_id or f"linli-edge-{self.site}-{self.gateway}"


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from exc
    try:
        if path.suffix.lower() == ".toml":
            return tomllib.loads(text)
        return yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'YAML'}: {exc}") from exc


def parse_config(data: Any, source: str = "config") -> EdgeConfig:
    """Validate a mapping; raise :class:`ConfigError` naming the first bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        lines = []
        for err in errors:
            where = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {where}: {err['msg']}")
        first = ".".join(str(p) for p in errors[0]["loc"]) or None
        raise ConfigError(f"{source}: invalid configuration\n" + "\n".join(lines), first) from exc


def load_config(path: str | Path) -> EdgeConfig:
    """Load a YAML (.yaml/.yml) or TOML (.toml) file."""
    path = Path(path)
    return parse_config(_read(path), str(path))

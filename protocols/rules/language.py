"""The rule language: frozen pydantic models for rules, selectors, conditions and actions.

A rule pack is a YAML list of rules. Every model forbids unknown keys, so a typo is an error
that names the field, never a silently ignored setting. See ``docs/rules.md``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from protocols.ids import Ident
from protocols.kinds import DeviceKind
from protocols.messages import AccessDecision, AccessKind, Name
from protocols.rules.durations import Duration, TimeOfDay

RuleId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.\-]{0,63}$")]
"""Lower-case letters, digits, ``-``, ``_`` and ``.``: ``confirmed-fire``."""
Number = Annotated[float, Field(allow_inf_nan=False)]
Value = bool | Number
MAX_MEMBERS = 8
MAX_LIST = 500


def _one_or_many(value: object) -> object:
    """``kind: smoke`` means ``kind: [smoke]``."""
    if isinstance(value, str | StrEnum):
        return (value,)
    return value


class RuleModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


class Severity(StrEnum):
    CRITICAL = "critical"
    MAJOR = "major"
    MINOR = "minor"
    WARNING = "warning"
    INFO = "info"


class SubjectType(StrEnum):
    """What an alert is about: one per (rule, subject) is active at a time."""

    DEVICE = "device"
    ZONE = "zone"
    DOOR = "door"


class RunsOn(StrEnum):
    """Where a rule is evaluated: the cloud, the gateway (offline too), or both."""

    CLOUD = "cloud"
    EDGE = "edge"
    BOTH = "both"


class Op(StrEnum):
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EQ = "=="
    NE = "!="


ORDERED_OPS = frozenset({Op.GT, Op.GE, Op.LT, Op.LE})


class Title(RuleModel):
    zh: Annotated[str, Field(min_length=1, max_length=200)]
    en: Annotated[str, Field(min_length=1, max_length=200)]


class Selector(RuleModel):
    """Which observations a rule (or a correlation member) looks at. All given fields must match.

    Exactly one of ``metric``, ``event`` or ``access`` says what the observation is; the others
    narrow it down. Lists mean "any of"; ``tags`` means "all of".
    """

    kind: Annotated[tuple[DeviceKind, ...], BeforeValidator(_one_or_many)] | None = None
    metric: Name | None = None
    event: Name | None = None
    access: Annotated[tuple[AccessKind, ...], BeforeValidator(_one_or_many)] | None = None
    decision: Annotated[tuple[AccessDecision, ...], BeforeValidator(_one_or_many)] | None = None
    reason: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)] | None = None
    devices: Annotated[tuple[Ident, ...], BeforeValidator(_one_or_many)] | None = None
    zones: Annotated[tuple[Ident, ...], BeforeValidator(_one_or_many)] | None = None
    buildings: Annotated[tuple[Ident, ...], BeforeValidator(_one_or_many)] | None = None
    sites: Annotated[tuple[Ident, ...], BeforeValidator(_one_or_many)] | None = None
    tags: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)] | None = None

    @model_validator(mode="after")
    def _one_signal(self) -> Selector:
        given = [n for n in ("metric", "event", "access") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give only one of metric, event, access (got {', '.join(given)})")
        if (self.decision is not None or self.reason is not None) and self.access is None:
            raise ValueError("access: decision and reason need access")
        lists = ("kind", "access", "decision", "reason", "devices", "zones", "buildings", "sites")
        for name in (*lists, "tags"):
            value = getattr(self, name)
            if value is not None and (len(value) == 0 or len(value) > MAX_LIST):
                raise ValueError(f"{name}: give 1-{MAX_LIST} entries")
        return self

    @property
    def has_signal(self) -> bool:
        return self.metric is not None or self.event is not None or self.access is not None


def _op_checks(op: Op, value: Value, clear: float | None) -> None:
    if isinstance(value, bool) and op in ORDERED_OPS:
        raise ValueError(f"value: op {op.value!r} needs a number, not {value!r}")
    if clear is None:
        return
    if op not in ORDERED_OPS:
        raise ValueError("clear: hysteresis needs one of > >= < <=")
    if op in (Op.GT, Op.GE) and clear > value:
        raise ValueError(f"clear: must be <= {value} for {op.value!r} (raise at X, clear below Y)")
    if op in (Op.LT, Op.LE) and clear < value:
        raise ValueError(f"clear: must be >= {value} for {op.value!r} (raise at X, clear above Y)")


class Threshold(RuleModel):
    """``value op X`` raises; with ``clear: Y`` it clears only once the value is back past Y."""

    type: Literal["threshold"]
    op: Op
    value: Value
    clear: Number | None = Field(None, description="Hysteresis: clear at this value")
    for_: Duration | None = Field(None, alias="for", description="Must hold this long")

    @model_validator(mode="after")
    def _consistent(self) -> Threshold:
        _op_checks(self.op, self.value, self.clear)
        return self


class Rate(RuleModel):
    """Change per minute over the samples of the last ``over`` (default 60 s)."""

    type: Literal["rate"]
    op: Literal[Op.GT, Op.GE, Op.LT, Op.LE]
    per_minute: Number
    over: Duration = 60.0
    clear: Number | None = None
    for_: Duration | None = Field(None, alias="for")

    @model_validator(mode="after")
    def _consistent(self) -> Rate:
        _op_checks(self.op, self.per_minute, self.clear)
        return self


class Count(RuleModel):
    """At least ``at_least`` matching observations per subject within ``within``."""

    type: Literal["count"]
    at_least: Annotated[int, Field(ge=1, le=10_000)] = 1
    within: Duration
    clear_on: Selector | None = Field(None, description="An observation that clears at once")


class Event(RuleModel):
    """A matching observation raises; the condition clears after ``hold`` or on ``clear_on``."""

    type: Literal["event"]
    hold: Duration = 300.0
    clear_on: Selector | None = None


class NoData(RuleModel):
    """Silence: no matching observation for ``for`` raises; the next one clears.

    ``op``/``value`` narrow what counts as data, e.g. only ``motion == true`` is activity.
    """

    type: Literal["no_data"]
    for_: Duration = Field(alias="for")
    op: Op | None = None
    value: Value | None = None

    @model_validator(mode="after")
    def _consistent(self) -> NoData:
        if (self.op is None) != (self.value is None):
            raise ValueError("op: give op and value together")
        if self.op is not None and self.value is not None:
            _op_checks(self.op, self.value, None)
        return self


class Member(RuleModel):
    """One leg of a correlation: a selector plus a threshold (``value``) or a rate."""

    select: Selector
    op: Op
    value: Value | None = None
    per_minute: Number | None = None
    over: Duration = 60.0

    @model_validator(mode="after")
    def _consistent(self) -> Member:
        if (self.value is None) == (self.per_minute is None):
            raise ValueError("value: give exactly one of value (threshold) or per_minute (rate)")
        if self.per_minute is not None and self.op not in ORDERED_OPS:
            raise ValueError("op: a rate member needs one of > >= < <=")
        if self.value is not None:
            _op_checks(self.op, self.value, None)
        if not self.select.has_signal:
            raise ValueError("select: needs a metric, event or access")
        return self


class Correlation(RuleModel):
    """All members hold, on distinct devices of one zone, within ``within`` of each other."""

    type: Literal["correlation"]
    within: Duration
    all_of: Annotated[tuple[Member, ...], Field(min_length=2, max_length=MAX_MEMBERS)]
    hold: Duration | None = Field(None, description="Stays active this long; default within")
    distinct_devices: bool = True


def _condition_tag(value: object) -> str | None:
    if isinstance(value, Mapping):
        tag = value.get("type")
        return tag if isinstance(tag, str) else None
    tag = getattr(value, "type", None)
    return tag if isinstance(tag, str) else None


CONDITION_TYPES = ("threshold", "rate", "count", "event", "no_data", "correlation")
Condition = Annotated[
    Annotated[Threshold, Tag("threshold")]
    | Annotated[Rate, Tag("rate")]
    | Annotated[Count, Tag("count")]
    | Annotated[Event, Tag("event")]
    | Annotated[NoData, Tag("no_data")]
    | Annotated[Correlation, Tag("correlation")],
    Discriminator(
        _condition_tag,
        custom_error_type="condition_type",
        custom_error_message=f"type must be one of {', '.join(CONDITION_TYPES)}",
    ),
]


class Scope(StrEnum):
    """Where a command's target devices are, relative to the alert."""

    ZONE = "zone"
    BUILDING = "building"
    SITE = "site"
    DEVICE = "device"


class TargetSpec(RuleModel):
    """Devices a command goes to, resolved by the caller: e.g. every door lock of the zone."""

    kind: DeviceKind
    scope: Scope = Scope.ZONE
    tags: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many)] = ()


Params = Annotated[dict[Name, str | bool | Number], Field(max_length=32)]


class CommandSpec(RuleModel):
    command: Name
    target: TargetSpec
    params: Params = Field(default_factory=dict)


class NotifySpec(RuleModel):
    notify: Annotated[tuple[Name, ...], BeforeValidator(_one_or_many), Field(min_length=1)]


def _action_tag(value: object) -> str | None:
    if isinstance(value, Mapping):
        if "command" in value:
            return "command"
        if "notify" in value:
            return "notify"
        return None
    if isinstance(value, CommandSpec):
        return "command"
    if isinstance(value, NotifySpec):
        return "notify"
    return None


ActionSpec = Annotated[
    Annotated[CommandSpec, Tag("command")] | Annotated[NotifySpec, Tag("notify")],
    Discriminator(
        _action_tag,
        custom_error_type="action_type",
        custom_error_message="an action is {command: NAME, target: ...} or {notify: [CHANNEL]}",
    ),
]

Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name: Asia/Shanghai)") from exc
    return name


class Window(RuleModel):
    """``from``–``to`` local time on ``days``; ``to`` before ``from`` runs past midnight."""

    days: Annotated[tuple[Day, ...], BeforeValidator(_one_or_many), Field(min_length=1)] = DAYS
    from_: TimeOfDay = Field(alias="from")
    to: TimeOfDay


class Schedule(RuleModel):
    """When a rule may raise, in the site's time zone (or ``timezone`` here)."""

    timezone: Annotated[str, Field(max_length=64)] | None = None
    windows: Annotated[tuple[Window, ...], Field(min_length=1, max_length=50)]

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)


class Rule(RuleModel):
    id: RuleId
    title: Title
    description: Annotated[str, Field(max_length=2000)] | None = None
    severity: Severity
    subject: SubjectType = SubjectType.DEVICE
    runs_on: RunsOn = RunsOn.CLOUD
    enabled: bool = True
    select: Selector | None = None
    when: Condition
    schedule: Schedule | None = None
    min_interval: Duration | None = Field(
        None, description="Flap safety: at least this long between raises per subject"
    )
    alert: bool = Field(True, description="Raise/clear an alert; false = actions only")
    then: Annotated[tuple[ActionSpec, ...], Field(max_length=20)] = ()
    on_clear: Annotated[tuple[ActionSpec, ...], Field(max_length=20)] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        when = self.when
        if isinstance(when, Correlation):
            if self.subject is not SubjectType.ZONE:
                raise ValueError("subject: a correlation is about a zone (subject: zone)")
            return self
        sel = self.select
        if sel is None:
            raise ValueError("select: required (which observations the rule looks at)")
        if isinstance(when, Threshold | Rate) and sel.metric is None:
            raise ValueError(f"select.metric: required for a {when.type} condition")
        if isinstance(when, Count | Event) and not sel.has_signal:
            raise ValueError(f"select: a {when.type} condition needs a metric, event or access")
        if isinstance(when, NoData) and not (sel.has_signal or sel.kind or sel.devices):
            raise ValueError("select: no_data needs a kind, devices, or a metric/event/access")
        if not self.alert and not self.then:
            raise ValueError("then: a rule with alert: false needs at least one action")
        return self

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-able form that :meth:`RuleSet.from_config` reads back."""
        data: dict[str, object] = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        return data


class RuleSet(RuleModel):
    """A validated rule pack. Build one with ``load_rules``, ``parse_rules`` or ``from_config``."""

    rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> RuleSet:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self

    def __iter__(self) -> Iterator[Rule]:  # type: ignore[override]
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(r.id for r in self.rules)

    def get(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)

    def for_edge(self) -> RuleSet:
        """The rules a gateway evaluates itself (``runs_on: edge`` or ``both``)."""
        return RuleSet(rules=tuple(r for r in self.rules if r.runs_on is not RunsOn.CLOUD))

    def for_cloud(self) -> RuleSet:
        """The rules the cloud evaluates (``runs_on: cloud`` or ``both``)."""
        return RuleSet(rules=tuple(r for r in self.rules if r.runs_on is not RunsOn.EDGE))

    def merged(self, other: RuleSet) -> RuleSet:
        """Both packs; a duplicate id is a :class:`RuleError` naming it."""
        from protocols.rules.loader import combine

        return combine([self, other])

    def to_config(self) -> tuple[dict[str, object], ...]:
        """The rules as plain dicts for ``GatewayConfig.rules``."""
        return tuple(rule.to_dict() for rule in self.rules)

    @classmethod
    def from_config(
        cls, rules: Iterable[Mapping[str, object]], source_name: str = "config"
    ) -> RuleSet:
        """Validate ``GatewayConfig.rules``; raises :class:`RuleError` like the file loader."""
        from protocols.rules.loader import validate_items

        return validate_items(list(rules), source_name)

    def fingerprint(self) -> str:
        return json.dumps(self.to_config(), sort_keys=True, ensure_ascii=False)

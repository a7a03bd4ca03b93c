"""The rule language and its pure evaluator, shared by the edge agent and the cloud.

    from protocols.rules import RuleEngine, default_pack, observations_from

    engine = RuleEngine(default_pack().for_cloud(), timezones={"site1": "Asia/Shanghai"})
    for obs in observations_from(decoded, registry.lookup):
        for action in engine.observe(obs):
            ...  # RaiseAlert / ClearAlert / SendCommand / Notify
    engine.advance(now)  # fire timers: for, no_data, window expiry

Pure: pydantic, PyYAML and the standard library only. See docs/rules.md.
"""

from protocols.rules.actions import (
    Action,
    ActionModel,
    ClearAlert,
    CommandTarget,
    Notify,
    RaiseAlert,
    SendCommand,
)
from protocols.rules.durations import format_duration, parse_duration
from protocols.rules.engine import RuleEngine
from protocols.rules.errors import RuleError
from protocols.rules.language import (
    ActionSpec,
    CommandSpec,
    Condition,
    Correlation,
    Count,
    Event,
    Member,
    NoData,
    NotifySpec,
    Op,
    Rate,
    Rule,
    RuleSet,
    RunsOn,
    Schedule,
    Scope,
    Selector,
    Severity,
    SubjectType,
    TargetSpec,
    Threshold,
    Title,
    Window,
)
from protocols.rules.loader import default_pack, edge_pack, load_rules, parse_rules
from protocols.rules.matching import in_schedule
from protocols.rules.observations import (
    DeviceInfo,
    Lookup,
    Observation,
    observations_from,
)

__all__ = [
    "Action",
    "ActionModel",
    "ActionSpec",
    "ClearAlert",
    "CommandSpec",
    "CommandTarget",
    "Condition",
    "Correlation",
    "Count",
    "DeviceInfo",
    "Event",
    "Lookup",
    "Member",
    "NoData",
    "Notify",
    "NotifySpec",
    "Observation",
    "Op",
    "RaiseAlert",
    "Rate",
    "Rule",
    "RuleEngine",
    "RuleError",
    "RuleSet",
    "RunsOn",
    "Schedule",
    "Scope",
    "Selector",
    "SendCommand",
    "Severity",
    "SubjectType",
    "TargetSpec",
    "Threshold",
    "Title",
    "Window",
    "default_pack",
    "edge_pack",
    "format_duration",
    "in_schedule",
    "load_rules",
    "observations_from",
    "parse_duration",
    "parse_rules",
]

"""Pure risk arithmetic: a risk's level from likelihood × impact, and the lifecycle phase of
a rule (rules carry no tags in the rule language, so the phase of each shipped rule is kept here).
"""

from __future__ import annotations

from typing import Literal, get_args

from cloud.governance.models import Phase
from protocols.rules.language import Rule

PHASES: tuple[Phase, ...] = get_args(Phase)
Level = Literal["low", "medium", "high", "critical"]
LEVELS: tuple[Level, ...] = get_args(Level)

SCALE = range(1, 6)
"""Likelihood and impact are each rated 1 (rare / minor) … 5 (almost certain / catastrophic)."""

LEVEL_FLOORS: tuple[tuple[int, Level], ...] = ((20, "critical"), (10, "high"), (5, "medium"))
"""The 5 × 5 matrix: score = likelihood × impact; ≥ 20 critical, ≥ 10 high, ≥ 5 medium, else
low (so 5 × 4 is critical, 4 × 3 and 2 × 5 are high, 1 × 5 and 3 × 3 are medium, 2 × 2 low)."""


def risk_level(likelihood: int, impact: int) -> Level:
    """The level of a risk rated ``likelihood`` and ``impact`` (1..5 each)."""
    if likelihood not in SCALE or impact not in SCALE:
        raise ValueError(f"likelihood and impact are 1..5, got {likelihood} and {impact}")
    score = likelihood * impact
    return next((level for floor, level in LEVEL_FLOORS if score >= floor), "low")


RULE_PHASES: dict[str, Phase] = {
    # Stopping a hazard before it becomes an emergency.
    "ebike-overtemp": "prevention",
    "ebike-overcurrent": "prevention",
    "door-held-open": "prevention",
    "night-door-open": "prevention",
    "unknown-face-repeated": "prevention",
    "living-alone-no-activity": "prevention",
    # Keeping the means of response ready: water for the hydrants, sensors that report.
    "water-tank-low": "preparation",
    "hydrant-pressure-low": "preparation",
    "gateway-no-data": "preparation",
    "device-no-data": "preparation",
    # Emergencies.
    "smoke-alarm": "response",
    "edge-smoke-local": "response",
    "confirmed-fire": "response",
    "heat-high": "response",
    "gas-ch4-high": "response",
    "gas-co-high": "response",
    "water-leak": "response",
    "sos-pressed": "response",
    "door-forced": "response",
    "tailgating": "response",
    "block-listed-person": "response",
    "manhole-tilt": "response",
    "elevator-fault": "response",
}
"""The lifecycle phase of each rule of the shipped pack."""


def rule_phase(rule: Rule) -> Phase:
    """A rule's phase: from :data:`RULE_PHASES`, else response for a critical rule (it reports
    an emergency) and prevention for any other (it reports a hazard)."""
    known = RULE_PHASES.get(rule.id)
    if known is not None:
        return known
    return "response" if rule.severity.value == "critical" else "prevention"

"""Checking a scenario's outcome: a pure function of the expectations and the alerts seen.

The runner polls the cloud's ``GET /api/alerts`` and notes, for every alert of the site that was
not there before the run, the simulated time (seconds from the timeline start) at which it was
first seen. :func:`check` then decides:

* every expected alert (rule, severity, subject) was seen no later than its deadline
  (``after + within``) plus ``slack`` (one poll interval, in simulated seconds) — else it is
  ``late`` or ``missing``; a matching rule and subject with another severity is ``wrong_severity``;
* no critical alert appeared that was not expected, unless its rule is in the scenario's
  ``allow`` list;
* no more distinct alerts of an expected (rule, subject) than its ``at_most`` (``too_many``);
* none of the scenario's ``forbid`` alerts appeared, whatever their severity;
* every ``expect_actuators`` entry (a door released, a siren on) acted in time.

The report is a frozen model that prints as JSON; ``passed`` is the exit status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from simulators.scenario import ExpectedActuator, ExpectedAlert, Forbidden


class ObservedAlert(BaseModel):
    """An alert as the runner saw it: what the cloud said, and when (timeline seconds)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int | str
    rule: str
    severity: str
    subject: str
    seen_at: float


class Outcome(StrEnum):
    MET = "met"
    LATE = "late"
    MISSING = "missing"
    WRONG_SEVERITY = "wrong_severity"
    TOO_MANY = "too_many"


class ExpectationResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    severity: str
    subject: str
    deadline: float
    outcome: Outcome
    seen_at: float | None = None
    alert_id: int | str | None = None
    seen_severity: str | None = None
    count: int = 0


class ActuatorResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    gateway: str
    device: str
    state: str
    deadline: float
    outcome: Outcome
    seen_at: float | None = None


def judge_actuator(exp: ExpectedActuator, seen_at: float | None, slack: float) -> ActuatorResult:
    if seen_at is None:
        outcome = Outcome.MISSING
    else:
        outcome = Outcome.MET if seen_at <= exp.deadline + slack else Outcome.LATE
    return ActuatorResult(
        gateway=exp.gateway,
        device=exp.device,
        state=exp.state,
        deadline=exp.deadline,
        outcome=outcome,
        seen_at=seen_at,
    )


class CheckReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    scenario: str
    passed: bool
    expected: tuple[ExpectationResult, ...]
    unexpected_critical: tuple[ObservedAlert, ...]
    forbidden: tuple[ObservedAlert, ...] = ()
    actuators: tuple[ActuatorResult, ...] = ()
    alerts_seen: int
    slack: float
    notes: tuple[str, ...] = ()


def _judge(exp: ExpectedAlert, seen: Sequence[ObservedAlert], slack: float) -> ExpectationResult:
    base = {
        "rule": exp.rule,
        "severity": exp.severity,
        "subject": exp.subject,
        "deadline": exp.deadline,
    }
    same = [a for a in seen if a.rule == exp.rule and a.subject == exp.subject]
    right = sorted((a for a in same if a.severity == exp.severity), key=lambda a: a.seen_at)
    if right:
        first = right[0]
        outcome = Outcome.MET if first.seen_at <= exp.deadline + slack else Outcome.LATE
        if outcome is Outcome.MET and exp.at_most is not None and len(right) > exp.at_most:
            outcome = Outcome.TOO_MANY
        return ExpectationResult(
            **base, outcome=outcome, seen_at=first.seen_at, alert_id=first.id, count=len(right)
        )
    if same:
        first = min(same, key=lambda a: a.seen_at)
        return ExpectationResult(
            **base,
            outcome=Outcome.WRONG_SEVERITY,
            seen_at=first.seen_at,
            alert_id=first.id,
            seen_severity=first.severity,
        )
    return ExpectationResult(**base, outcome=Outcome.MISSING)


def check(
    scenario: str,
    expected: Iterable[ExpectedAlert],
    seen: Sequence[ObservedAlert],
    *,
    allow: Iterable[str] = (),
    forbid: Iterable[Forbidden] = (),
    actuators: Iterable[ActuatorResult] = (),
    slack: float = 0.0,
    notes: Iterable[str] = (),
) -> CheckReport:
    expected = tuple(expected)
    results = tuple(_judge(e, seen, slack) for e in expected)
    wanted = {(e.rule, e.subject) for e in expected}
    allowed = set(allow)
    unexpected = tuple(
        a
        for a in sorted(seen, key=lambda a: a.seen_at)
        if a.severity == "critical" and (a.rule, a.subject) not in wanted and a.rule not in allowed
    )
    bans = tuple(forbid)
    forbidden = tuple(
        a
        for a in sorted(seen, key=lambda a: a.seen_at)
        if any(b.rule == a.rule and b.subject in (None, a.subject) for b in bans)
    )
    acts = tuple(actuators)
    passed = (
        all(r.outcome is Outcome.MET for r in results)
        and all(a.outcome is Outcome.MET for a in acts)
        and not unexpected
        and not forbidden
    )
    return CheckReport(
        scenario=scenario,
        passed=passed,
        expected=results,
        unexpected_critical=unexpected,
        forbidden=forbidden,
        actuators=acts,
        alerts_seen=len(seen),
        slack=slack,
        notes=tuple(notes),
    )

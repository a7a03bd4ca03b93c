"""Checking a scenario's outcome: a pure function of the expectations and the alerts seen.

The runner polls the cloud's ``GET /api/alerts`` and notes, for every alert of the site that was
not there before the run, the simulated time (seconds from the timeline start) at which it was
first seen. :func:`check` then decides:

* every expected alert (rule, severity, subject) was seen no later than its deadline
  (``after + within``) plus ``slack`` (one poll interval, in simulated seconds) — else it is
  ``late`` or ``missing``; a matching rule and subject with another severity is ``wrong_severity``;
* no critical alert appeared that was not expected, unless its rule is in the scenario's
  ``allow`` list.

The report is a frozen model that prints as JSON; ``passed`` is the exit status.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from simulators.scenario import ExpectedAlert


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


class CheckReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    scenario: str
    passed: bool
    expected: tuple[ExpectationResult, ...]
    unexpected_critical: tuple[ObservedAlert, ...]
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
        return ExpectationResult(**base, outcome=outcome, seen_at=first.seen_at, alert_id=first.id)
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
    passed = all(r.outcome is Outcome.MET for r in results) and not unexpected
    return CheckReport(
        scenario=scenario,
        passed=passed,
        expected=results,
        unexpected_critical=unexpected,
        alerts_seen=len(seen),
        slack=slack,
        notes=tuple(notes),
    )

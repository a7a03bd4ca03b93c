"""The checker against recorded alert lists: met, late, missing, wrong severity, unexpected."""

from __future__ import annotations

from simulators.checker import ObservedAlert, Outcome, check
from simulators.scenario import ExpectedAlert, Forbidden

SMOKE = ExpectedAlert(rule="smoke-alarm", severity="critical", subject="smoke-1", within=30.0)
FIRE = ExpectedAlert(
    rule="confirmed-fire", severity="critical", subject="b1-f3", after=20.0, within=60.0
)


def seen(
    rule: str, subject: str, at: float, severity: str = "critical", id_: int = 1
) -> ObservedAlert:
    return ObservedAlert(id=id_, rule=rule, severity=severity, subject=subject, seen_at=at)


def test_all_met_passes() -> None:
    r = check(
        "fire",
        [SMOKE, FIRE],
        [seen("smoke-alarm", "smoke-1", 4.0), seen("confirmed-fire", "b1-f3", 70.0, id_=2)],
    )
    assert r.passed
    assert [e.outcome for e in r.expected] == [Outcome.MET, Outcome.MET]
    assert r.expected[1].alert_id == 2


def test_missing_alert_fails() -> None:
    r = check("fire", [SMOKE, FIRE], [seen("smoke-alarm", "smoke-1", 4.0)])
    assert not r.passed
    assert r.expected[1].outcome is Outcome.MISSING


def test_late_alert_fails_but_slack_covers_one_poll() -> None:
    late = [seen("smoke-alarm", "smoke-1", 31.0)]
    assert check("s", [SMOKE], late).expected[0].outcome is Outcome.LATE
    assert not check("s", [SMOKE], late).passed
    assert check("s", [SMOKE], late, slack=2.0).passed


def test_wrong_subject_is_missing_and_unexpected() -> None:
    r = check("s", [SMOKE], [seen("smoke-alarm", "smoke-2", 3.0)])
    assert r.expected[0].outcome is Outcome.MISSING
    assert [a.subject for a in r.unexpected_critical] == ["smoke-2"]


def test_wrong_severity_fails() -> None:
    r = check("s", [SMOKE], [seen("smoke-alarm", "smoke-1", 3.0, severity="major")])
    assert r.expected[0].outcome is Outcome.WRONG_SEVERITY
    assert r.expected[0].seen_severity == "major"
    assert not r.passed


def test_unexpected_critical_fails_unless_allowed_and_minor_ones_do_not_count() -> None:
    alerts = [seen("smoke-alarm", "smoke-1", 3.0), seen("sos-pressed", "sos-9", 5.0, id_=7)]
    r = check("s", [SMOKE], alerts)
    assert not r.passed
    assert r.unexpected_critical[0].id == 7
    assert check("s", [SMOKE], alerts, allow=["sos-pressed"]).passed
    minor = [
        seen("smoke-alarm", "smoke-1", 3.0),
        seen("battery-low", "smoke-1", 5.0, severity="minor"),
    ]
    assert check("s", [SMOKE], minor).passed


def test_report_is_json() -> None:
    r = check("s", [SMOKE], [])
    assert '"outcome":"missing"' in r.model_dump_json()


def test_at_most_counts_distinct_alerts() -> None:
    once = ExpectedAlert(rule="water-leak", severity="major", subject="l1", within=10.0, at_most=1)
    one = [seen("water-leak", "l1", 2.0, severity="major")]
    two = [*one, seen("water-leak", "l1", 6.0, severity="major", id_=2)]
    assert check("s", [once], one).passed
    r = check("s", [once], two)
    assert r.expected[0].outcome is Outcome.TOO_MANY
    assert r.expected[0].count == 2
    assert not r.passed


def test_forbidden_alert_fails_whatever_its_severity() -> None:
    ban = [Forbidden(rule="gateway-no-data", subject="gw-b1")]
    other = [seen("gateway-no-data", "gw-b3", 2.0, severity="major")]
    assert check("s", [], other, forbid=ban).passed
    bad = [seen("gateway-no-data", "gw-b1", 2.0, severity="major")]
    r = check("s", [], bad, forbid=ban)
    assert not r.passed
    assert r.forbidden[0].subject == "gw-b1"
    assert not check("s", [], bad, forbid=[Forbidden(rule="gateway-no-data")]).passed


def test_actuator_expectations() -> None:
    from simulators.checker import judge_actuator
    from simulators.scenario import ExpectedActuator

    door = ExpectedActuator(gateway="gw-b1", device="evac-1", state="released", within=10.0)
    assert judge_actuator(door, 3.0, 0.0).outcome is Outcome.MET
    assert judge_actuator(door, 12.0, 0.0).outcome is Outcome.LATE
    missing = judge_actuator(door, None, 0.0)
    assert missing.outcome is Outcome.MISSING
    assert not check("s", [], [], actuators=[missing]).passed
    assert check("s", [], [], actuators=[judge_actuator(door, 3.0, 0.0)]).passed

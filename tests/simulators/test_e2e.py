"""Every starter scenario passes --check against the real cloud (in-process app, real mosquitto,
real edge agents); a scenario whose expected alert cannot happen fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from linli.services import Mosquitto
from simulators.checker import CheckReport, Outcome
from simulators.runner import RunOptions, ScenarioRun
from simulators.scenario import library, load_scenario
from tests.simulators.conftest import InProcessCloud, in_process_cloud

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _run(
    path: Path, site: str, mosquitto: Mosquitto, cloud: InProcessCloud, tmp: Path
) -> CheckReport:
    scenario = load_scenario(path)
    options = RunOptions(mqtt_port=mosquitto.port, site=site, state_dir=tmp / "edge", poll=0.5)
    run = ScenarioRun(scenario, options, cloud=cloud.client, on_tick=cloud.tick)
    cloud.import_site(run.cloud_sitefile())
    return await run.run()


@pytest.mark.parametrize("path", library(), ids=lambda p: p.stem)
async def test_starter_scenario_passes_check(
    path: Path, site: str, mosquitto: Mosquitto, cloud: InProcessCloud, tmp_path: Path
) -> None:
    report = await _run(path, site, mosquitto, cloud, tmp_path)
    assert report.passed, report.model_dump_json(indent=2)


async def test_scenario_whose_alert_cannot_happen_fails(
    site: str, mosquitto: Mosquitto, cloud: InProcessCloud, tmp_path: Path
) -> None:
    # Smoke on floor 3 but the heat rises on floor 1: no confirmed fire can follow in b1-f3,
    # and a confirmed fire is demanded within 20 s.
    text = (
        "name: impossible\nsite: " + str(library()[0].parent.parent / "sites" / "demo.yaml") + "\n"
        "grace: 2s\n"
        "steps:\n"
        "  - {at: 0s, force: {device: smoke-b1-f3, metric: smoke, value: true}}\n"
        "  - {at: 1s, force: {device: heat-b1-f1, metric: temperature, value: 80}}\n"
        "expect:\n"
        "  - {rule: smoke-alarm, severity: critical, subject: smoke-b1-f3, within: 15s}\n"
        "  - {rule: confirmed-fire, severity: critical, subject: b1-f3, within: 20s}\n"
    )
    path = tmp_path / "impossible.yaml"
    path.write_text(text)
    report = await _run(path, site, mosquitto, cloud, tmp_path)
    assert not report.passed
    outcomes = {(e.rule, e.subject): e.outcome for e in report.expected}
    assert outcomes[("smoke-alarm", "smoke-b1-f3")] is Outcome.MET
    assert outcomes[("confirmed-fire", "b1-f3")] is Outcome.MISSING


UNTAGGED_RULE = """
- id: pir-silent-24h
  title: {zh: 24小时无活动, en: No motion for 24 h}
  severity: major
  select: {kind: pir, metric: motion}
  when: {type: no_data, for: 24h, op: "==", value: true}
"""


async def test_accelerated_silence_fires_on_the_simulated_clock(
    site: str, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    """24 h of silence in about a minute, and not a minute earlier: the elderly scenario's
    clock against an untagged copy of the living-alone rule (any PIR)."""
    rules = tmp_path / "untagged.yaml"
    rules.write_text(UNTAGGED_RULE)
    scenario = load_scenario(next(p for p in library() if p.stem == "elderly-no-activity"))
    expect = scenario.expect[0].model_copy(update={"rule": "pir-silent-24h"})
    scenario = scenario.model_copy(update={"expect": (expect,)})
    async with in_process_cloud(mosquitto, tmp_path, rule_files=(rules,)) as cloud:
        options = RunOptions(
            mqtt_port=mosquitto.port, site=site, state_dir=tmp_path / "e", poll=0.5
        )
        run = ScenarioRun(scenario, options, cloud=cloud.client, on_tick=cloud.tick)
        cloud.import_site(run.cloud_sitefile())
        report = await run.run()
    assert report.passed, report.model_dump_json(indent=2)
    seen = report.expected[0].seen_at
    assert seen is not None and seen >= 24 * 3600  # not before 24 h of silence

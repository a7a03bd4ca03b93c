"""Every starter scenario passes --check against the real cloud (in-process app, real mosquitto,
real edge agents); a scenario whose expected alert cannot happen fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from linli.services import Mosquitto
from simulators.checker import Outcome
from simulators.runner import RunOptions, ScenarioRun
from simulators.scenario import library, load_scenario
from tests.simulators.conftest import InProcessCloud

pytestmark = pytest.mark.anyio


async def _run(path: Path, site: str, mosquitto: Mosquitto, cloud: InProcessCloud, tmp: Path):  # type: ignore[no-untyped-def]
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

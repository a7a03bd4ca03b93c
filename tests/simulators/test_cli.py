"""``linli sim``: list, validate, gen-site, and a scenario run against a real broker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cloud.registry.sitefile import SiteFile
from linli.services import Mosquitto
from simulators.__main__ import main
from simulators.scenario import SITES, library


def test_list_names_every_starter_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for path in library():
        assert path.stem in out


def test_validate_accepts_the_library_and_names_the_bad_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", *map(str, library()), str(SITES / "demo.yaml")]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"name: b\nsite: {SITES / 'demo.yaml'}\nexpect:\n  - {{rule: r}}\n")
    assert main(["validate", str(bad)]) == 1
    assert "expect.0.severity" in capsys.readouterr().err


def test_gen_site_prints_a_valid_site_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gen-site", "--site", "g1", "--buildings", "2", "--floors", "4"]) == 0
    site = SiteFile.model_validate(yaml.safe_load(capsys.readouterr().out))
    assert site.site == "g1"
    assert len(site.buildings) == 2


def test_check_without_cloud_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(library()[0]), "--check"]) == 2
    assert "--check needs --cloud" in capsys.readouterr().err


def test_run_without_check_prints_a_report(
    mosquitto: Mosquitto, site: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        f"name: s\nsite: {SITES / 'demo.yaml'}\nclock: {{settle: 1s}}\ngrace: 1s\n"
        "steps:\n  - {at: 0s, force: {device: sos-b1-102, metric: pressed, value: true}}\n"
    )
    code = main(["run", str(scenario), "--mqtt", f"127.0.0.1:{mosquitto.port}", "--site", site])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scenario"] == "s"
    assert "no cloud given: alerts were not checked" in report["notes"]


def test_run_site_runs_every_gateway_for_the_duration(
    mosquitto: Mosquitto, site: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run-site", str(SITES / "demo.yaml"), "--mqtt", f"127.0.0.1:{mosquitto.port}"]
    assert main([*args, "--site", site, "--duration", "2s"]) == 0
    started = json.loads(capsys.readouterr().out.splitlines()[0])
    demo = SiteFile.model_validate(yaml.safe_load((SITES / "demo.yaml").read_text()))
    simulated = [d for _, d in demo.devices if d.kind != "gateway"]  # gateways report themselves
    assert started == {"site": site, "gateways": len(demo.gateways), "devices": len(simulated)}

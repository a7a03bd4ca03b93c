"""``python -m protocols.rules``: check files, print the default pack."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocols.rules import parse_rules
from protocols.rules.__main__ import main


def test_check_reports_valid_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["default"])
    text = capsys.readouterr().out
    assert len(parse_rules(text, "stdout")) > 20
    (tmp_path / "pack.yaml").write_text(text, encoding="utf-8")
    assert main(["check", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "confirmed-fire" in out and "rule(s) valid" in out


def test_check_names_the_bad_field(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "- id: x\n  title: {zh: 甲, en: X}\n  severity: major\n"
        "  select: {kind: heat, metric: temperature}\n"
        "  when: {type: threshold, op: '>', value: 1, for: soon}\n",
        encoding="utf-8",
    )
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: rule 'x': when.for:" in err


def test_schema_describes_a_list_of_rules(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["type"] == "array"
    rule = schema["$defs"]["Rule"]
    assert {"id", "title", "severity", "when"} <= set(rule["required"])
    assert "for" in schema["$defs"]["Threshold"]["properties"]  # the YAML spelling, not for_

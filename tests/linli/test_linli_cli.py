from __future__ import annotations

import pytest

from linli.cli import COMMANDS, main


def test_usage_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_unknown_command_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_no_arguments_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2


def test_dispatches_to_package_main(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["protocol", "topics"]) == 0
    assert "linli/v1/{site}/{gateway}/telemetry" in capsys.readouterr().out

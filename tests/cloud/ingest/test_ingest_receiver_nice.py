"""The split receiver's OS priority (``receiver_nice``): set in the real receiver process,
refused where it means nothing, and a priority the host does not permit is said, not fatal."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloud.db import create_schema, make_engine
from cloud.ingest import Ingest
from cloud.ingest.config import IngestConfig
from cloud.ingest.receive import set_niceness
from cloud.registry import Registry
from cloud.settings import Settings
from linli.services import Mosquitto
from tests.cloud.ingest.ingest_support import config, running


@pytest.mark.anyio
@pytest.mark.parametrize("nice", [5, -5])
async def test_the_receiver_process_runs_at_the_configured_niceness(
    nice: int, mosquitto: Mosquitto, site: str, tmp_path: Path
) -> None:
    if nice < 0 and os.geteuid() != 0:
        pytest.skip("raising a priority needs root or CAP_SYS_NICE (CI runs as root)")
    engine = make_engine(f"sqlite:///{tmp_path / 'linli.db'}")
    create_schema(engine)
    ingest = Ingest(
        config(mosquitto, site, mode="split", receiver_nice=nice), engine, Registry(engine)
    )
    try:
        async with running(ingest):
            assert ingest.log_source is not None
            child = ingest.log_source.child_pid
            assert child not in (0, os.getpid())
            assert os.getpriority(os.PRIO_PROCESS, child) == nice
            assert os.getpriority(os.PRIO_PROCESS, 0) != nice  # this process is untouched
    finally:
        engine.dispose()


def test_receiver_nice_is_refused_without_a_receiver_and_out_of_range() -> None:
    with pytest.raises(ValidationError, match="receiver_nice applies to mode 'split'"):
        IngestConfig(receiver_nice=-5)
    with pytest.raises(ValidationError, match="receiver_nice"):
        IngestConfig(mode="split", receiver_nice=-21)
    with pytest.raises(ValidationError, match="ingest_receiver_nice"):
        Settings(ingest_receiver_nice=20)
    assert IngestConfig(mode="split", receiver_nice=-5).receiver_nice == -5
    assert IngestConfig(mode="split").receiver_nice is None  # inherited by default


def test_a_priority_the_host_does_not_permit_is_said_and_the_receiver_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    asked: list[tuple[int, int, int]] = []

    def refused(which: int, who: int, prio: int) -> None:
        asked.append((which, who, prio))
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "setpriority", refused)
    with caplog.at_level(logging.ERROR, logger="cloud.ingest.receive"):
        set_niceness(-10)  # returns: the receiver runs at the priority it has
    assert asked == [(os.PRIO_PROCESS, 0, -10)]
    [record] = caplog.records
    assert "receiver_nice -10 not set" in record.getMessage()
    assert "CAP_SYS_NICE" in record.getMessage()
    set_niceness(None)  # nothing asked
    assert len(asked) == 1

"""Liveness: offline after N missed reports per device class; a periodic sweep applies it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.registry import (
    LivenessChange,
    Registry,
    SiteFile,
    is_offline,
    report_interval,
    sweep,
    sweep_forever,
)
from cloud.registry.tables import Device
from protocols.kinds import DeviceKind

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("silence_s", "interval_s", "missed", "offline"),
    [
        (0, 60, 3, False),
        (180, 60, 3, False),
        (181, 60, 3, True),
        (119, 60, 2, False),
        (121, 60, 2, True),
    ],
)
def test_is_offline_after_n_missed_reports(
    silence_s: float, interval_s: float, missed: int, offline: bool
) -> None:
    last = NOW - timedelta(seconds=silence_s)
    assert is_offline(last, interval_s, NOW, missed) is offline


def test_never_seen_is_offline_and_intervals_depend_on_kind() -> None:
    assert is_offline(None, 60, NOW)
    assert report_interval("gas") < report_interval("smoke")
    assert report_interval("smoke", 5.0) == 5.0
    assert report_interval("no-such-kind") == report_interval(None)


def test_sweep_marks_offline_and_back_online(engine: Engine, site: str) -> None:
    registry = Registry(engine)
    sitefile = SiteFile.model_validate(
        {
            "site": site,
            "gateways": [
                {
                    "id": "gw1",
                    "devices": [
                        {"id": "gas-1", "kind": "gas"},
                        {"id": "smoke-1", "kind": "smoke"},
                        {"id": "fast-1", "kind": "temperature", "report_interval_s": 10},
                    ],
                }
            ],
        }
    )
    with Session(engine) as s, s.begin():
        registry.import_site(s, sitefile)
        for device in ("gas-1", "smoke-1", "fast-1"):
            row = s.get(Device, (site, device))
            assert row is not None
            row.last_seen = NOW - timedelta(minutes=10)
    with Session(engine) as s, s.begin():
        changes = {(c.device, c.online) for c in sweep(s, NOW)}
    # gas: 60 s × 3 < 10 min → offline; smoke: 3600 s × 3 → online; fast: 10 s × 3 → offline.
    assert changes == {("gas-1", False), ("smoke-1", True), ("fast-1", False)}
    with Session(engine) as s, s.begin():
        assert sweep(s, NOW) == []  # no change, no report
        gas = s.get(Device, (site, "gas-1"))
        assert gas is not None and gas.kind == DeviceKind.GAS.value
        gas.last_seen = NOW
    with Session(engine) as s, s.begin():
        assert [(c.device, c.online) for c in sweep(s, NOW)] == [("gas-1", True)]


@pytest.mark.anyio
async def test_periodic_sweep_reports_changes(engine: Engine, site: str) -> None:
    registry = Registry(engine)
    with Session(engine) as s, s.begin():
        registry.import_site(
            s,
            SiteFile.model_validate(
                {
                    "site": site,
                    "gateways": [{"id": "gw1", "devices": [{"id": "g1", "kind": "gas"}]}],
                }
            ),
        )
        row = s.get(Device, (site, "g1"))
        assert row is not None
        row.last_seen = datetime.now(UTC) - timedelta(hours=1)
    got: list[LivenessChange] = []

    async def collect(changes: Sequence[LivenessChange]) -> None:
        got.extend(changes)

    task = asyncio.create_task(sweep_forever(engine, 0.05, collect))
    try:
        async with asyncio.timeout(10):
            while not got:  # noqa: ASYNC110  (waits for the background sweep)
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert [(c.device, c.online) for c in got] == [("g1", False)]

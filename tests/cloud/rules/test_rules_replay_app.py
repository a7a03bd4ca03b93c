"""The watermark through the real app (``create_app``, role ``all``): a start after a crash
replays what was stored, a start after a clean stop evaluates nothing; SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from cloud.api import create_app
from cloud.api.services import Services
from cloud.db import make_engine
from cloud.settings import Settings
from tests.cloud.rules.replay_support import SMOKE, Gateway, import_site, smoke_alerts, store


def wait_for(predicate: Callable[[], bool], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {within:.0f}s")


def test_the_app_replays_after_a_crash_and_not_after_a_clean_stop(db_url: str) -> None:
    settings = Settings(db_url=db_url, mqtt_enabled=False, static_dashboards=False)
    with TestClient(create_app(settings)) as client:  # first start: watermark = end of store
        services: Services = client.app.state.services  # type: ignore[attr-defined]
        assert services.runner is not None
        wait_for(services.runner.caught_up.is_set, "first catch-up")
    engine = make_engine(db_url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    try:
        registry = import_site(sessions)
        # Ingest (of a process that then died) stored and acknowledged a smoke alarm.
        store(sessions, registry, [Gateway().smoke(True)])
        assert smoke_alerts(sessions) == []
        with TestClient(create_app(settings)) as client:
            services = client.app.state.services  # type: ignore[attr-defined]
            runner = services.runner
            assert runner is not None
            wait_for(lambda: smoke_alerts(sessions) == [(SMOKE, False)], "alarm replayed")
            assert runner.counts["replayed"] == 1
        with TestClient(create_app(settings)) as client:
            services = client.app.state.services  # type: ignore[attr-defined]
            runner = services.runner
            assert runner is not None
            wait_for(runner.caught_up.is_set, "catch-up after a clean stop")
            assert runner.counts["replayed"] == 0 and services.effects.submitted == 0
        assert smoke_alerts(sessions) == [(SMOKE, False)]
    finally:
        engine.dispose()


def test_a_shared_group_feeding_the_in_process_rules_is_refused() -> None:
    with pytest.raises(ValidationError, match="ingest_shared_group"):
        Settings(db_url="sqlite://", ingest_shared_group="ingest")
    assert Settings(db_url="sqlite://", ingest_shared_group="ingest", role="ingest").role == (
        "ingest"
    )

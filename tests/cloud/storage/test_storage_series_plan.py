"""Readers of one device or one series find its readings through (series, ts), not by scanning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.api.routers import telemetry
from cloud.auth.models import Principal, Role
from cloud.db import create_schema, make_engine
from cloud.ingest.store import BatchWriter
from cloud.registry import Registry
from cloud.risk.welfare import last_activity
from cloud.storage.queries import downsample
from tests.cloud.storage.storage_support import T0, Gateway

WHO = Principal(user_id=1, username="viewer", role=Role.ADMIN, display_name="viewer")
SINCE, UNTIL = T0 - timedelta(minutes=1), T0 + timedelta(hours=1)

READERS: dict[str, Callable[[Session], object]] = {
    "chart history": lambda db: telemetry.series(WHO, db, "s1", "d3", "temperature", SINCE, UNTIL),
    "latest of a device": lambda db: telemetry.latest(WHO, db, "s1", "d3"),
    "downsample": lambda db: downsample(db, "s1", "d3", "temperature", SINCE, UNTIL, 60),
    "welfare activity": lambda db: last_activity(db, "s1", ["d3", "d4"]),
}


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    path: Path = tmp_path_factory.mktemp("plan") / "plan.sqlite"
    engine = make_engine(f"sqlite:///{path}")
    create_schema(engine)
    writer = BatchWriter(engine, Registry(engine))
    for gw in (Gateway("s1", "gw1"), Gateway("s2", "gw1")):
        values = {f"d{i}": float(i) for i in range(8)}
        for metric in ("temperature", "motion"):
            writer.write(
                gw.deliver(*(gw.telemetry(seq, values, metric=metric) for seq in range(20)))
            )
    with engine.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    return engine


@pytest.mark.parametrize("reader", sorted(READERS))
def test_reader_uses_the_series_index(filled: Engine, reader: str) -> None:
    seen: list[tuple[str, Any]] = []

    def _seen(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if "FROM readings" in sql or "JOIN readings" in sql:
            seen.append((sql, params))

    event.listen(filled, "before_cursor_execute", _seen)
    try:
        with Session(filled) as db:
            result = READERS[reader](db)
    finally:
        event.remove(filled, "before_cursor_execute", _seen)
    assert result, f"{reader} found nothing: the fixture's readings are not where it looks"
    assert seen, f"{reader} did not read the readings table"
    with filled.connect() as conn:
        for sql, params in seen:
            plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
            details = " | ".join(str(row[-1]) for row in plan)
            assert "SCAN readings" not in details, details
            assert "ix_readings_series_ts" in details, details

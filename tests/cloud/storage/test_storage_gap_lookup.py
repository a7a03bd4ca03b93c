"""A batch finds its gateways' boots and open gaps through the index, not by scanning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event

from cloud.db import create_schema, make_engine
from cloud.ingest.store import BatchWriter
from cloud.registry import Registry
from tests.cloud.storage.storage_support import Gateway


def test_boot_and_gap_lookups_use_the_index_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'gaps.sqlite'}")
    try:
        create_schema(engine)
        writer = BatchWriter(engine, Registry(engine))
        gateways = [Gateway("s1", f"gw{i}") for i in range(3)]
        # First messages open a gap (seq 0..1 missing) so that both tables have rows.
        writer.write([d for gw in gateways for d in gw.deliver(gw.telemetry(2))])
        lookups: list[tuple[str, Any]] = []

        @event.listens_for(engine, "before_cursor_execute")
        def _seen(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
            select = sql.lstrip().upper().startswith("SELECT") and not many
            if select and ("FROM gateway_sessions" in sql or "FROM sequence_gaps" in sql):
                lookups.append((sql, params))

        result = writer.write([d for gw in gateways for d in gw.deliver(gw.telemetry(0))])
        event.remove(engine, "before_cursor_execute", _seen)
        assert result.gaps_opened == 0
        assert {"gateway_sessions", "sequence_gaps"} <= {
            table
            for sql, _ in lookups
            for table in ("gateway_sessions", "sequence_gaps")
            if f"FROM {table}" in sql
        }
        with engine.connect() as conn:
            for sql, params in lookups:
                plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params).all()
                details = " | ".join(str(row[-1]) for row in plan)
                assert "SCAN gateway_sessions" not in details, details
                assert "SCAN sequence_gaps" not in details, details
    finally:
        engine.dispose()

"""``record_uses``: pass grants read from the stored access events, each counted once, the mark
moving past everything read (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.gate import uses
from cloud.gate.tables import VisitorPassUse
from cloud.storage.tables import AccessEventRow
from dashboards.tables import VisitorPass
from protocols.codec import new_id
from tests.cloud.gate.conftest import access_row

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def a_pass(db: Session, site: str | None, max_uses: int = 2) -> int:
    row = VisitorPass(
        code=new_id()[:12],
        site=site,
        visitor_name="v",
        doors=[],
        valid_from=NOW,
        valid_until=NOW + timedelta(hours=1),
        max_uses=max_uses,
        uses=0,
        created_by="guard1",
        created_at=NOW,
        detail={},
    )
    db.add(row)
    db.flush()
    return row.id


def test_each_grant_counts_once_and_the_mark_moves_on(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Session(engine) as db:
        mine, elsewhere = a_pass(db, "s1"), a_pass(db, "s2")
        db.add_all([access_row("s1", None, reason="allow_list") for _ in range(3)])
        db.commit()
        nothing = uses.record_uses(db, 0, NOW)
        top = db.scalar(select(AccessEventRow.id).order_by(AccessEventRow.id.desc()).limit(1))
        assert (nothing.uses, nothing.mark) == (0, top)  # read past, though nothing to record

        db.add_all(
            [
                access_row("s1", f"vp{mine}"),
                access_row("s1", f"vp{mine}"),
                access_row("s1", f"vp{mine}", reason="pass_used_up", decision="denied"),
                access_row("s1", f"vp{elsewhere}"),  # a pass of site s2: skipped
                access_row("s1", "vp999999"),  # no such pass
                access_row("s1", "guest-1"),  # a pass of the gate's own config
            ]
        )
        db.commit()
        monkeypatch.setattr(uses, "SCAN_BATCH", 1)  # few rows per call: the caller loops
        monkeypatch.setattr(uses, "LOOKBACK", 1)
        first = uses.record_uses(db, nothing.mark, NOW)
        db.commit()
        assert first.more and first.sites == frozenset({"s1"})
        mark, total = first.mark, first.uses
        for _ in range(10):
            step = uses.record_uses(db, mark, NOW)
            db.commit()
            mark, total = step.mark, total + step.uses
            if not step.more:
                break
        assert total == 2
        assert uses.record_uses(db, 0, NOW).uses == 0  # everything again: nothing new
        monkeypatch.setattr(uses, "SCAN_BATCH", 1000)
        monkeypatch.setattr(uses, "LOOKBACK", 200)
        assert uses.record_uses(db, 0, NOW).uses == 0
        db.commit()
        row = db.get(VisitorPass, mine)
        assert row is not None and row.uses == 2 and uses.pass_state(row, NOW) == "pass_used_up"
        other = db.get(VisitorPass, elsewhere)
        assert other is not None and other.uses == 0
        assert uses.scan_mark(db) == max(u.event_id for u in db.scalars(select(VisitorPassUse)))

"""Visitor pass uses: recorded from the gateways' access events, counted, and judged.

A gate that grants a visitor pass publishes an access event (``reason`` ``visitor_pass``,
``decision`` ``granted``, ``attrs.pass_id`` ``vp<id>``, ``method`` qr/pin/face). Ingest stores it
in ``access_events``; :func:`record_uses` reads the new ones (by id, from a mark) and inserts
one ``visitor_pass_uses`` row per event — the event's ``msg_id`` is unique there, so a
redelivered event, a replay after an outage or a second reader of the same rows never counts
twice — and sets ``visitor_passes.uses`` to the number of rows of the pass.

:func:`pass_state` says whether a pass can still be used, with the reason names the door uses
(``pass_revoked``, ``pass_wrong_door``, ``pass_expired``, ``pass_not_yet_valid``,
``pass_used_up``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cloud.gate.tables import VisitorPassUse
from cloud.storage.tables import AccessEventRow
from dashboards.tables import VisitorPass

log = logging.getLogger(__name__)
PASS_ID = re.compile(r"vp([1-9][0-9]{0,17})")
"""How a cloud-issued pass is named on the wire (``protocols.passes.SyncedPass.pass_id``)."""
SCAN_BATCH = 1000
LOOKBACK = 200
"""Rows re-read below the mark each scan: with several ingest processes on PostgreSQL a smaller
id can commit after a larger one. Re-reading is harmless (the msg_id is unique)."""


def wire_id(pass_row_id: int) -> str:
    return f"vp{pass_row_id}"


def row_id(wire: object) -> int | None:
    """``vp12`` → 12; anything else (a pass of the gate's own configuration) → None."""
    match = PASS_ID.fullmatch(wire) if isinstance(wire, str) else None
    return int(match.group(1)) if match else None


@dataclass(frozen=True)
class Recorded:
    uses: int
    """New uses recorded (0 when every event was known)."""
    sites: frozenset[str | None]
    """Sites of the passes whose count changed (None: a pass valid at every site)."""
    mark: int
    """The highest access event id read."""
    more: bool = False
    """The scan stopped at its batch size: call again."""


def scan_mark(session: Session) -> int:
    """Where scanning starts in a fresh process: after the last use already recorded."""
    return int(session.scalar(select(func.max(VisitorPassUse.event_id))) or 0)


def record_uses(session: Session, mark: int, now: datetime) -> Recorded:
    """Record the pass grants stored after ``mark`` (minus :data:`LOOKBACK`); the caller
    commits. Events naming an unknown pass, or a pass of another site, are skipped. The mark
    moves past every event read, granted pass or not, so the next scan reads only new ids."""
    top = max(mark, session.scalar(select(func.max(AccessEventRow.id))) or 0)
    rows = session.execute(
        select(
            AccessEventRow.id,
            AccessEventRow.msg_id,
            AccessEventRow.site,
            AccessEventRow.gateway,
            AccessEventRow.door,
            AccessEventRow.method,
            AccessEventRow.ts,
            AccessEventRow.attrs,
        )
        .where(
            AccessEventRow.id > max(0, mark - LOOKBACK),
            AccessEventRow.id <= top,
            AccessEventRow.reason == "visitor_pass",
            AccessEventRow.decision == "granted",
        )
        .order_by(AccessEventRow.id)
        .limit(SCAN_BATCH + LOOKBACK)  # the look-back (≤ LOOKBACK ids) never starves new rows
    ).all()
    more = len(rows) == SCAN_BATCH + LOOKBACK
    high = max(mark, rows[-1].id) if more else top
    if not rows:
        return Recorded(0, frozenset(), high)
    ids = {r.id: row_id((r.attrs or {}).get("pass_id")) for r in rows}
    passes = {
        p.id: p.site
        for p in session.execute(
            select(VisitorPass.id, VisitorPass.site).where(
                VisitorPass.id.in_({i for i in ids.values() if i is not None})
            )
        )
    }
    fresh: list[dict[str, Any]] = []
    for r in rows:
        pass_id = ids[r.id]
        if pass_id is None or pass_id not in passes:
            continue
        if passes[pass_id] not in (None, r.site):
            log.warning(
                "access event %s: pass vp%d is not a pass of site %s", r.msg_id, pass_id, r.site
            )
            continue
        fresh.append(
            {
                "pass_id": pass_id,
                "msg_id": r.msg_id,
                "event_id": r.id,
                "site": r.site,
                "gateway": r.gateway,
                "door": r.door,
                "method": r.method,
                "at": r.ts,
                "recorded_at": now,
            }
        )
    added = _insert_new(session, fresh)
    changed = {u["pass_id"] for u in added}
    for pass_id in changed:
        count = select(func.count()).where(VisitorPassUse.pass_id == pass_id).scalar_subquery()
        session.execute(update(VisitorPass).where(VisitorPass.id == pass_id).values(uses=count))
    if added:
        log.info("recorded %d visitor pass use(s) of %d pass(es)", len(added), len(changed))
    sites = frozenset(passes[i] for i in changed)
    return Recorded(len(added), sites, high, more=more)


def _insert_new(session: Session, uses: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Insert the uses whose msg_id is new; returns those (concurrent recorders are safe)."""
    if not uses:
        return []
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(VisitorPassUse)
        .on_conflict_do_nothing(index_elements=["msg_id"])
        .returning(VisitorPassUse.msg_id)
    )
    inserted: set[str] = set()
    for use in uses:
        inserted.update(session.scalars(stmt, use))
    return [u for u in uses if u["msg_id"] in inserted]


PassState = str
"""``active``, or the refusal: ``pass_revoked``, ``pass_wrong_door``, ``pass_expired``,
``pass_not_yet_valid``, ``pass_used_up``."""


def pass_state(row: VisitorPass, now: datetime, door: str | None = None) -> PassState:
    """Whether the pass can still be used now (at ``door``, if given), else why not: revoked,
    then door, then time, then uses — the door policy's order."""
    if row.revoked_at is not None:
        return "pass_revoked"
    if door is not None and row.doors and door not in row.doors:
        return "pass_wrong_door"
    if now > row.valid_until:
        return "pass_expired"
    if now < row.valid_from:
        return "pass_not_yet_valid"
    if row.uses >= row.max_uses:
        return "pass_used_up"
    return "active"


def remaining(row: VisitorPass) -> int:
    return max(0, row.max_uses - row.uses)


def uses_of(session: Session, pass_id: int) -> Iterable[VisitorPassUse]:
    return session.scalars(
        select(VisitorPassUse).where(VisitorPassUse.pass_id == pass_id).order_by(VisitorPassUse.at)
    )

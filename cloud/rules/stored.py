"""Read stored messages back for the rules: ``ingest_messages`` rows → :class:`StoredMessage`.

The rules replay (after a crash) and the rules feed (``--role rules``) rebuild each message
from what ingest stored: readings, device events, access events and command acks. Device and
access events and acks have a unique ``msg_id``; readings carry their message's row id
(``readings.message``) and are found by scanning ``readings.id > floor`` (their only index
serves charts), where ``floor`` comes from a :class:`Mark` taken before the message was stored
(see :func:`take_mark`).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from pydantic import ValidationError
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from cloud.ingest.models import StoredMessage
from cloud.storage.tables import (
    AccessEventRow,
    CommandAckRow,
    DeviceEventRow,
    Reading,
    Series,
    StoredEnvelope,
)
from protocols.kinds import METRICS
from protocols.messages import (
    AccessEvent,
    CommandAck,
    DeviceEvent,
    Envelope,
    Telemetry,
)
from protocols.messages import Reading as WireReading
from protocols.topics import Channel, Topic

log = logging.getLogger(__name__)

_CHUNK = 500  # msg_ids per IN (...)
_READINGS_CHUNK = 5000  # one scan of the readings range per this many messages

BINARY_METRICS = frozenset(m.name for ms in METRICS.values() for m in ms if m.binary) - frozenset(
    m.name for ms in METRICS.values() for m in ms if not m.binary
)
"""Metrics stored as 0/1 floats that the wire (and the rules) know as booleans."""


@dataclass(frozen=True, slots=True)
class Row:
    """One ``ingest_messages`` row: what is needed to order it and rebuild its message."""

    id: int
    msg_id: str
    site: str
    gateway: str
    channel: str
    boot_id: str
    seq: int
    ts: datetime
    historical: bool
    pending: bool
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Mark:
    """``readings`` and ``ingest_messages`` ids at one moment, read in that order.

    Every message with an id above ``messages`` got its readings' ids after ``readings`` was
    read (ids are handed out in increasing order, a message's readings after its own id), so
    ``readings`` is a floor for the readings of every message after ``messages``.
    """

    readings: int
    messages: int


_COLUMNS = (
    StoredEnvelope.id,
    StoredEnvelope.msg_id,
    StoredEnvelope.site,
    StoredEnvelope.gateway,
    StoredEnvelope.channel,
    StoredEnvelope.boot_id,
    StoredEnvelope.seq,
    StoredEnvelope.ts,
    StoredEnvelope.historical,
    StoredEnvelope.pending,
    StoredEnvelope.received_at,
)


def take_mark(db: Session) -> Mark:
    """Read the highest readings id, then the highest message id handed out so far.

    PostgreSQL: the sequence's last value (ids of transactions still open count, which is what
    makes the floor safe). SQLite has one writer: the highest committed id is the same thing.
    """
    readings = int(db.scalar(select(func.max(Reading.id))) or 0)
    if db.get_bind().dialect.name == "postgresql":
        messages = db.scalar(
            text(
                "SELECT coalesce(pg_sequence_last_value("
                "pg_get_serial_sequence('ingest_messages', 'id')::regclass), 0)"
            )
        )
    else:
        messages = db.scalar(select(func.max(StoredEnvelope.id)))
    return Mark(readings, int(messages or 0))


def last_id(db: Session) -> int:
    """The highest committed ``ingest_messages.id`` (0 for none)."""
    return int(db.scalar(select(func.max(StoredEnvelope.id))) or 0)


def rows_after(db: Session, after: int, limit: int) -> list[Row]:
    """Committed rows with ``id > after``, in id order, at most ``limit``."""
    q = select(*_COLUMNS).where(StoredEnvelope.id > after).order_by(StoredEnvelope.id).limit(limit)
    return [Row(*r) for r in db.execute(q)]


def rows_between(db: Session, ranges: Iterable[tuple[int, int]]) -> list[Row]:
    """Committed rows with an id in one of the inclusive ``ranges`` (ids that were missing)."""
    out: list[Row] = []
    for lo, hi in ranges:
        q = select(*_COLUMNS).where(StoredEnvelope.id >= lo, StoredEnvelope.id <= hi)
        out += [Row(*r) for r in db.execute(q)]
    return out


def start_after(db: Session, watermark: int, max_rows: int) -> int:
    """Where a replay starts: ``watermark``, or later so that at most ``max_rows`` follow."""
    q = (
        select(StoredEnvelope.id)
        .where(StoredEnvelope.id > watermark)
        .order_by(StoredEnvelope.id.desc())
        .offset(max_rows)
        .limit(1)
    )
    beyond = db.scalar(q)
    return watermark if beyond is None else int(beyond)


@dataclass(frozen=True, slots=True)
class Rebuilt:
    messages: list[StoredMessage]
    top_reading: int
    """The highest ``readings.id`` among them (0 if none)."""


def rebuild(db: Session, rows: Sequence[Row], reading_floor: int, counts: Counter[str]) -> Rebuilt:
    """The messages of ``rows`` (same order) as ingest handed them over after its commit.

    ``rows`` must be committed: their readings then lie between ``reading_floor`` and the
    highest readings id now, the one range scanned. A row whose content cannot be found
    (deleted by retention, or a floor that was too high) or no longer validates is left out,
    counted in ``counts`` and logged.
    """
    by_channel: dict[str, list[str]] = defaultdict(list)
    telemetry: list[int] = []
    for row in rows:
        by_channel[row.channel].append(row.msg_id)
        if row.channel == Channel.TELEMETRY.value:
            telemetry.append(row.id)
    readings, top = _readings(db, telemetry, reading_floor)
    events = _by_msg_id(db, DeviceEventRow, by_channel[Channel.EVENT.value])
    access = _by_msg_id(db, AccessEventRow, by_channel[Channel.ACCESS.value])
    acks = _by_msg_id(db, CommandAckRow, by_channel[Channel.ACK.value])
    out: list[StoredMessage] = []
    for row in rows:
        try:
            built = _message(row, readings, events, access, acks)
        except ValidationError as exc:
            counts["rebuild_invalid"] += 1
            log.warning("stored message %s (%s) no longer validates: %s", row.msg_id, row.id, exc)
            continue
        if built is None:
            counts["rebuild_missing"] += 1
            log.warning(
                "stored message %s (id %d, %s) has no %s rows to rebuild it from",
                row.msg_id,
                row.id,
                row.site,
                row.channel,
            )
            continue
        out.append(built)
    return Rebuilt(out, top)


_ReadingRow = tuple[str, str, float, datetime, bool]


def _readings(
    db: Session, messages: Sequence[int], floor: int
) -> tuple[dict[int, list[_ReadingRow]], int]:
    """Readings of the messages with these ``ingest_messages`` ids, by message id."""
    found: dict[int, list[_ReadingRow]] = defaultdict(list)
    if not messages:
        return found, 0
    top = 0
    ceiling = int(db.scalar(select(func.max(Reading.id))) or 0)
    for i in range(0, len(messages), _READINGS_CHUNK):
        chunk = messages[i : i + _READINGS_CHUNK]
        q = (
            select(
                Reading.id,
                Reading.message,
                Series.device,
                Series.metric,
                Reading.value,
                Reading.ts,
                Reading.pending,
            )
            .join(Series, Series.id == Reading.series)
            .where(Reading.id > floor, Reading.id <= ceiling, Reading.message.in_(chunk))
            .order_by(Reading.id)
        )
        for rid, message, device, metric, value, ts, pending in db.execute(q):
            if message is not None:  # always: the IN matched it
                found[message].append((device, metric, value, ts, pending))
            top = max(top, rid)
    return found, top


_T = TypeVar("_T", DeviceEventRow, AccessEventRow, CommandAckRow)


def _by_msg_id(db: Session, model: type[_T], msg_ids: Sequence[str]) -> dict[str, _T]:
    found: dict[str, _T] = {}
    for i in range(0, len(msg_ids), _CHUNK):
        chunk = msg_ids[i : i + _CHUNK]
        for item in db.scalars(select(model).where(model.msg_id.in_(chunk))):
            found[item.msg_id] = item
    return found


def _message(
    row: Row,
    readings: dict[int, list[_ReadingRow]],
    events: dict[str, DeviceEventRow],
    access: dict[str, AccessEventRow],
    acks: dict[str, CommandAckRow],
) -> StoredMessage | None:
    topic = Topic(row.site, row.gateway, Channel(row.channel))
    head = {
        "msg_id": row.msg_id,
        "boot_id": row.boot_id,
        "seq": row.seq,
        "ts": row.ts,
        "historical": row.historical,
    }
    message: Envelope
    pending_devices: frozenset[str] = frozenset()
    if row.channel == Channel.TELEMETRY.value:
        found = readings.get(row.id)
        if not found:
            return None
        message = Telemetry(
            **head,
            readings=tuple(
                WireReading(
                    device=device,
                    metric=metric,
                    value=bool(value) if metric in BINARY_METRICS else value,
                    ts=ts,
                )
                for device, metric, value, ts, _ in found
            ),
        )
        pending_devices = frozenset(d for d, _, _, _, pending in found if pending)
    elif row.channel == Channel.EVENT.value:
        ev = events.get(row.msg_id)
        if ev is None:
            return None
        message = DeviceEvent(
            **head,
            device=ev.device,
            event=ev.event,
            priority=ev.priority,
            value=ev.value,
            attrs=ev.attrs or {},
        )
        pending_devices = frozenset({ev.device}) if ev.pending else frozenset()
    elif row.channel == Channel.ACCESS.value:
        ac = access.get(row.msg_id)
        if ac is None:
            return None
        message = AccessEvent(
            **head,
            door=ac.door,
            kind=ac.kind,
            decision=ac.decision,
            reason=ac.reason,
            method=ac.method,
            camera=ac.camera,
            person_id=ac.person_id,
            person_name=ac.person_name,
            distance=ac.distance,
            liveness=ac.liveness,
            attrs=ac.attrs or {},
        )
    elif row.channel == Channel.ACK.value:
        ack = acks.get(row.msg_id)
        if ack is None:
            return None
        message = CommandAck(
            **head, cmd_id=ack.cmd_id, status=ack.status, reason=ack.reason, result=ack.result or {}
        )
    else:
        return None
    assert isinstance(message, Telemetry | DeviceEvent | AccessEvent | CommandAck)
    return StoredMessage(
        topic, message, pending=row.pending, pending_devices=pending_devices, row_id=row.id
    )

"""Keep gateways' face galleries and visitor passes current: ``gallery.sync`` and ``passes.sync``.

Every approved (or pending) gateway of a site gets both commands, once there is something to
send (a published gallery; a pass, or passes to clear) — the cloud does not know which
gateways run a gate; one without a gate answers ``refused`` (unknown command), which ends the
retries for it. One round of :class:`GateSync` (:meth:`GateSync.tick`):

* **uses**: records the visitor pass uses the gateways reported (granted access events, read
  from ``access_events``; :mod:`cloud.gate.uses`), so the pass sets below carry them;
* **gallery**: when the latest published gallery version (``cloud.faces``: enrol or erase, then
  publish) is newer than the one last sent to a gateway, send ``gallery.sync`` for it;
* **passes**: the site's visitor passes (``dashboards.tables.VisitorPass``: not revoked, not
  expired a day ago; ``site`` = this site or none) with their uses — in total and at this
  gateway — and the site's revoked passes not expired a day ago, as a digest of their code (so
  the door refuses them as ``pass_revoked``) — are fingerprinted per gateway; when a gateway's
  last sent set differs, send ``passes.sync`` (:mod:`protocols.passes`) with the whole set;
* **retry until acknowledged**: each command is recorded by ``cloud.commands.service.issue``
  (which matches the gateway's ack); the newest unanswered one per gateway and name is published
  again, same ``cmd_id`` (the edge answers a repeat as a duplicate), every ``resend_s`` until it
  is acknowledged or expires.

When rounds run: at start; whenever a write announces a change (:mod:`cloud.gate.changes`:
pass issued or revoked, gallery published — in this process at once, in another process by
:mod:`cloud.signals`: PostgreSQL NOTIFY, SQLite's counter poll, ~0.5 s); whenever ingest stores
a granted visitor pass event (:meth:`GateSync.on_stored`); when an unanswered command is due
again; and otherwise every ``poll_s`` (a safety net for what no signal reaches: a writer that
does not announce, a notification lost while the listener reconnected).

It starts with the cloud app when the faces router is included and the app has an MQTT
publisher (see :func:`cloud.faces.router.lifespan`). The gallery URL in ``gallery.sync`` is
``LINLI_GATE_URL`` (the cloud's address as gateways reach it).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands.publisher import Publisher, PublishQueueFull
from cloud.commands.service import issue
from cloud.commands.tables import CommandRow, CommandStatus
from cloud.faces.store import GalleryStore
from cloud.faces.sync import COMMAND as GALLERY_COMMAND
from cloud.faces.sync import bundle_url
from cloud.gate import changes
from cloud.gate.tables import VisitorPassUse
from cloud.gate.uses import record_uses, row_id, scan_mark, wire_id
from cloud.ingest.models import StoredMessage
from cloud.registry.tables import Approval, Gateway
from dashboards.tables import VisitorPass
from protocols.messages import Command, CommandAck
from protocols.passes import COMMAND as PASSES_COMMAND
from protocols.passes import MAX_REVOKED, PassesSync, RevokedPass, SyncedPass, code_digest

log = logging.getLogger(__name__)
GALLERY_TTL = timedelta(hours=24)
PASSES_TTL = timedelta(hours=24)
ISSUER = "gate-sync"
MAX_RETRY = timedelta(hours=1)
RECENTLY_EXPIRED = timedelta(days=1)
"""Passes expired this recently are still sent: the door refuses them as ``pass_expired``
(which a guard can explain to the visitor) rather than as an unknown code."""


def active_passes(session: Session, site: str, now: datetime) -> tuple[SyncedPass, ...]:
    """The site's unrevoked visitor passes, valid now, later or until a day ago, oldest first,
    with the uses the cloud knows of (``uses_here`` left 0: see :func:`for_gateway`)."""
    rows = session.scalars(
        select(VisitorPass)
        .where(
            VisitorPass.revoked_at.is_(None),
            VisitorPass.valid_until > now - RECENTLY_EXPIRED,
            or_(VisitorPass.site == site, VisitorPass.site.is_(None)),
        )
        .order_by(VisitorPass.id)
    )
    return tuple(
        SyncedPass(
            pass_id=wire_id(row.id),
            code=row.code,
            doors=tuple(row.doors or ()),
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            max_uses=row.max_uses,
            uses=row.uses,
        )
        for row in rows
    )


def revoked_passes(session: Session, site: str, now: datetime) -> tuple[RevokedPass, ...]:
    """The site's revoked passes that would still be sent had they not been revoked (valid
    now, later or until a day ago): the :data:`MAX_REVOKED` most recently revoked, by id."""
    rows = session.execute(
        select(VisitorPass.id, VisitorPass.code)
        .where(
            VisitorPass.revoked_at.is_not(None),
            VisitorPass.valid_until > now - RECENTLY_EXPIRED,
            or_(VisitorPass.site == site, VisitorPass.site.is_(None)),
        )
        .order_by(VisitorPass.revoked_at.desc(), VisitorPass.id.desc())
        .limit(MAX_REVOKED)
    ).all()
    return tuple(
        RevokedPass(pass_id=wire_id(ident), digest=code_digest(code))
        for ident, code in sorted(rows)
    )


def uses_by_gateway(
    session: Session, site: str, passes: Sequence[SyncedPass]
) -> dict[str, dict[str, int]]:
    """gateway → wire pass id → uses recorded at that gateway (passes with uses only)."""
    ids = [i for p in passes if p.uses and (i := row_id(p.pass_id)) is not None]
    counts: dict[str, dict[str, int]] = {}
    if not ids:
        return counts
    rows = session.execute(
        select(VisitorPassUse.gateway, VisitorPassUse.pass_id, func.count())
        .where(VisitorPassUse.site == site, VisitorPassUse.pass_id.in_(ids))
        .group_by(VisitorPassUse.gateway, VisitorPassUse.pass_id)
    )
    for gateway, pass_id, n in rows:
        counts.setdefault(gateway, {})[wire_id(pass_id)] = int(n)
    return counts


def for_gateway(passes: Sequence[SyncedPass], here: dict[str, int]) -> tuple[SyncedPass, ...]:
    """The set as one gateway gets it: ``uses_here`` = the uses it made itself (so it can add
    uses it made that the cloud has not heard of yet, without counting any twice)."""
    return tuple(
        p.model_copy(update={"uses_here": min(p.uses, here[p.pass_id])}) if p.pass_id in here else p
        for p in passes
    )


def _had(session: Session, key: tuple[str, str]) -> bool:
    """Whether this gateway was ever sent visitor passes (so an empty set must reach it)."""
    site, gateway = key
    query = select(CommandRow.id).where(
        CommandRow.site == site, CommandRow.gateway == gateway, CommandRow.name == PASSES_COMMAND
    )
    return session.scalars(query.limit(1)).first() is not None


def fingerprint(passes: tuple[SyncedPass, ...], revoked: tuple[RevokedPass, ...] = ()) -> str:
    text = "\n".join(p.model_dump_json() for p in (*passes, *revoked))
    return hashlib.sha256(text.encode()).hexdigest()


class GateSync:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        store: GalleryStore,
        base_url: str | None,
        *,
        poll_s: float = 60.0,
        resend_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.store = store
        self.base_url = base_url
        self.poll_s = poll_s
        self.resend_s = resend_s
        self.clock = clock
        self._gallery_sent: dict[tuple[str, str], int] = {}
        self._passes_sent: dict[tuple[str, str], str] = {}
        self._last_version = 0
        self._published_at: dict[str, float] = {}
        """Unanswered commands: cmd_id → when last published (monotonic); under ``_lock``."""
        self._acked: set[str] = set()
        """Acks ingest has stored that the database may not show yet (the rules runner
        applies them); under ``_lock``."""
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str, str], int] = {}
        """(site, gateway, name) → sync commands failed in a row (the retry backs off)."""
        self._retry_at: datetime | None = None
        """When the next failed command is due to be issued again."""
        self._fresh: set[str] = set()
        """Commands published in the current round (never re-sent in the same round)."""
        self._mark: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._woken = asyncio.Event()
        self._pending_wake = threading.Event()
        self.sent = 0
        self.resent = 0
        self.rounds = 0
        self.wakes = 0
        self.uses_recorded = 0

    # -- when to run ----------------------------------------------------------------------
    def wake(self, site: str | None = None) -> None:
        """Run a round soon (thread-safe): what gateways of ``site`` need has changed."""
        self.wakes += 1
        self._pending_wake.set()
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to wake
                loop.call_soon_threadsafe(self._woken.set)

    async def on_stored(self, batch: Sequence[StoredMessage]) -> None:
        """Ingest's hook: a stored, granted visitor pass event wakes a round (which records
        the use and sends the new count to the site's gateways); so does a gateway's birth
        (a new gateway gets the gallery and the passes without waiting for the poll)."""
        for stored in batch:
            if isinstance(stored.message, CommandAck):
                self._answered(stored.message.cmd_id)
            if stored.duplicate:
                continue
            if changes.wakes_sync(stored.message):
                self.wake(stored.site)

    def _answered(self, cmd_id: str) -> None:
        """A sync command was acknowledged: no re-send is due for it (the wait is recomputed;
        no round runs for that)."""
        with self._lock:
            known = self._published_at.pop(cmd_id, None) is not None
            if known:
                self._acked.add(cmd_id)
        loop = self._loop
        if known and loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._woken.set)

    async def run(self) -> None:
        """Rounds until cancelled: at start, on each wake, when a re-send is due, every
        ``poll_s`` otherwise."""
        self._loop = asyncio.get_running_loop()
        self._woken = asyncio.Event()
        engine = self.sessions.kw["bind"]
        unsubscribe = changes.subscribe(engine, self.wake)
        # Writers in other processes (the faces CLI, a cloud process of another role).
        listener = asyncio.create_task(changes.listen(engine, self.wake), name="gate-listen")
        try:
            due = True
            while True:
                if due:
                    self._pending_wake.clear()
                    await asyncio.to_thread(self.tick)
                self._woken.clear()
                if self._pending_wake.is_set():  # woken during the round: it may have missed it
                    due = True
                    continue
                try:
                    async with asyncio.timeout(self.next_wait()):
                        await self._woken.wait()
                    due = self._pending_wake.is_set()  # else an ack: only the wait changed
                except TimeoutError:
                    due = True  # a re-send is due, or the safety poll
        finally:
            unsubscribe()
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)

    def next_wait(self) -> float:
        """Seconds until the next round without a wake: the earliest re-send, at most poll_s."""
        wait = self.poll_s
        if self._retry_at is not None:
            wait = min(wait, (self._retry_at - self.clock()).total_seconds())
        now = time.monotonic()
        with self._lock:
            for at in self._published_at.values():
                wait = min(wait, at + self.resend_s - now)
        return max(0.05, wait)

    # -- one round ------------------------------------------------------------------------
    def tick(self) -> None:
        """One round: pass uses reported, new gallery versions, changed pass sets, re-sends."""
        now = self.clock()
        self.rounds += 1
        self._fresh.clear()
        with self.sessions() as session:
            self._record_uses(session, now)
            gateways = session.execute(
                select(Gateway.site, Gateway.id).where(Gateway.approval != Approval.REJECTED.value)
            ).all()
            info = self.store.latest()
            by_site: dict[str, list[str]] = {}
            for site, gateway in gateways:
                by_site.setdefault(site, []).append(gateway)
            for site, members in by_site.items():
                passes = active_passes(session, site, now)
                revoked = revoked_passes(session, site, now)
                used = uses_by_gateway(session, site, passes)
                for gateway in members:
                    key = (site, gateway)
                    if (
                        info is not None
                        and self.base_url is not None
                        and self._gallery_sent.get(key, 0) < info.version
                    ):
                        params: dict[str, Any] = {
                            "version": float(info.version),
                            "sha256": info.sha256,
                            "url": bundle_url(self.base_url, info),
                        }
                        self._send(session, key, GALLERY_COMMAND, params, now, GALLERY_TTL)
                        self._gallery_sent[key] = info.version
                    mine = for_gateway(passes, used.get(gateway, {}))
                    mark = fingerprint(mine, revoked)
                    nothing = not mine and not revoked
                    if key not in self._passes_sent and nothing and not _had(session, key):
                        self._passes_sent[key] = mark  # never had a pass: nothing to clear
                    if self._passes_sent.get(key) != mark:
                        version = max(int(now.timestamp() * 1000), self._last_version + 1)
                        self._last_version = version
                        sync = PassesSync(version=version, passes=mine, revoked=revoked)
                        body = sync.params()
                        self._send(session, key, PASSES_COMMAND, dict(body), now, PASSES_TTL)
                        self._passes_sent[key] = mark
            session.commit()
            self._resend(session, now)

    def _record_uses(self, session: Session, now: datetime) -> None:
        if self._mark is None:
            self._mark = scan_mark(session)
        while True:
            recorded = record_uses(session, self._mark, now)
            session.commit()
            self.uses_recorded += recorded.uses
            advanced = recorded.mark > self._mark
            self._mark = recorded.mark
            if not (advanced and recorded.more):
                return

    def _send(
        self,
        session: Session,
        key: tuple[str, str],
        name: str,
        params: dict[str, Any],
        now: datetime,
        ttl: timedelta,
    ) -> None:
        site, gateway = key
        command = issue(
            session,
            site=site,
            gateway=gateway,
            name=name,
            target=None,
            params=params,
            now=now,
            ttl_s=ttl.total_seconds(),
            issued_by=ISSUER,
            reason="gallery or visitor passes changed",
        )
        self._publish(site, gateway, command)
        self.sent += 1

    def _publish(self, site: str, gateway: str, command: Command) -> None:
        try:
            self.publisher.send(site, gateway, command)
        except PublishQueueFull as exc:  # the re-send picks it up in a second
            log.warning("%s to %s/%s not queued: %s", command.name, site, gateway, exc)
            with self._lock:
                self._published_at[command.cmd_id] = time.monotonic() - self.resend_s + 1.0
            return
        with self._lock:
            self._published_at[command.cmd_id] = time.monotonic()
        self._fresh.add(command.cmd_id)

    def _resend(self, session: Session, now: datetime) -> None:
        """Publish again the newest unanswered sync command per gateway and name."""
        rows = session.scalars(
            select(CommandRow)
            .where(
                CommandRow.name.in_((GALLERY_COMMAND, PASSES_COMMAND)),
                CommandRow.issued_by == ISSUER,
                CommandRow.expires_at > now,
            )
            .order_by(CommandRow.id.desc())
        )
        newest: dict[tuple[str, str, str], CommandRow] = {}
        for row in rows:
            newest.setdefault((row.site, row.gateway, row.name), row)
        self._retry_failed(newest, now)
        unanswered = {r.cmd_id for r in newest.values() if r.status == CommandStatus.SENT.value}
        # Answered, superseded and expired commands are no longer waited for.
        with self._lock:
            self._acked &= unanswered
            waiting = unanswered - self._acked
            self._published_at = {k: v for k, v in self._published_at.items() if k in waiting}
            due = dict(self._published_at)
        for row in newest.values():
            if row.cmd_id not in waiting:
                continue
            last = due.get(row.cmd_id)
            if row.cmd_id in self._fresh:
                continue
            if last is not None and time.monotonic() - last < self.resend_s:
                continue
            command = Command(
                cmd_id=row.cmd_id,
                name=row.name,
                target=row.target,
                params=row.params,
                issued_at=row.issued_at,
                expires_at=row.expires_at,
                issued_by=row.issued_by,
            )
            self._publish(row.site, row.gateway, command)
            self.resent += 1

    def _retry_failed(self, newest: dict[tuple[str, str, str], CommandRow], now: datetime) -> None:
        """A gateway answered ``failed`` (e.g. it could not fetch the gallery bundle): issue the
        command again — a new one — after ``resend_s``, doubling per failure in a row up to
        :data:`MAX_RETRY`. ``refused`` (no gate there, bad params) is final."""
        self._retry_at = None
        for (site, gateway, name), row in newest.items():
            key = (site, gateway, name)
            if row.status != CommandStatus.FAILED.value:
                if row.status != CommandStatus.SENT.value:
                    self._failures.pop(key, None)
                continue
            failures = self._failures.setdefault(key, 1)
            delay = min(MAX_RETRY, timedelta(seconds=self.resend_s) * 2 ** (failures - 1))
            due = (row.ack_at or row.issued_at) + delay
            if now < due:
                self._retry_at = due if self._retry_at is None else min(self._retry_at, due)
                continue
            log.info(
                "%s to %s/%s failed (%s): issuing it again", name, site, gateway, row.ack_reason
            )
            self._failures[key] = failures + 1
            sent = self._gallery_sent if name == GALLERY_COMMAND else self._passes_sent
            sent.pop((site, gateway), None)  # the next round issues a new command
            self._retry_at = now

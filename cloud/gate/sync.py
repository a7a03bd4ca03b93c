"""Keep gateways' face galleries and visitor passes current: ``gallery.sync`` and ``passes.sync``.

Every approved (or pending) gateway of a site gets both commands, once there is something to
send (a published gallery; a pass, or passes to clear) — the cloud does not know which
gateways run a gate; one without a gate answers ``refused`` (unknown command), which ends the
retries for it. :class:`GateSync` runs one round every ``every_s`` seconds:

* **gallery**: when the latest published gallery version (``cloud.faces``: enrol or erase, then
  publish) is newer than the one last sent to a gateway, send ``gallery.sync`` for it;
* **passes**: the site's visitor passes (``dashboards.tables.VisitorPass``: not revoked, not
  expired a day ago; ``site`` = this site or none) are fingerprinted; when a gateway's last
  sent set differs, send ``passes.sync`` (:mod:`edge.gate.passes`) with the whole set;
* **retry until acknowledged**: each command is recorded by ``cloud.commands.service.issue``
  (which matches the gateway's ack); the newest unanswered one per gateway and name is published
  again, same ``cmd_id`` (the edge answers a repeat as a duplicate), every ``resend_s`` until it
  is acknowledged or expires.

It starts with the cloud app when the faces router is included and the app has an MQTT
publisher (see :func:`cloud.faces.router.lifespan`). The gallery URL in ``gallery.sync`` is
``LINLI_GATE_URL`` (the cloud's address as gateways reach it).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands.publisher import Publisher, PublishQueueFull
from cloud.commands.service import issue
from cloud.commands.tables import CommandRow, CommandStatus
from cloud.faces.store import GalleryStore
from cloud.faces.sync import COMMAND as GALLERY_COMMAND
from cloud.faces.sync import bundle_url
from cloud.registry.tables import Approval, Gateway
from dashboards.tables import VisitorPass
from edge.gate.passes import COMMAND as PASSES_COMMAND
from edge.gate.passes import PassesSync, SyncedPass
from protocols.messages import Command

log = logging.getLogger(__name__)
GALLERY_TTL = timedelta(hours=24)
PASSES_TTL = timedelta(hours=24)
ISSUER = "gate-sync"
RECENTLY_EXPIRED = timedelta(days=1)
"""Passes expired this recently are still sent: the door refuses them as ``pass_expired``
(which a guard can explain to the visitor) rather than as an unknown code."""


def active_passes(session: Session, site: str, now: datetime) -> tuple[SyncedPass, ...]:
    """The site's unrevoked visitor passes, valid now, later or until a day ago, oldest first."""
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
            pass_id=f"vp{row.id}",
            code=row.code,
            doors=tuple(row.doors or ()),
            valid_from=row.valid_from,
            valid_until=row.valid_until,
            max_uses=row.max_uses,
            uses=row.uses,
        )
        for row in rows
    )


def _had(session: Session, key: tuple[str, str]) -> bool:
    """Whether this gateway was ever sent visitor passes (so an empty set must reach it)."""
    site, gateway = key
    query = select(CommandRow.id).where(
        CommandRow.site == site, CommandRow.gateway == gateway, CommandRow.name == PASSES_COMMAND
    )
    return session.scalars(query.limit(1)).first() is not None


def fingerprint(passes: tuple[SyncedPass, ...]) -> str:
    text = "\n".join(p.model_dump_json() for p in passes)
    return hashlib.sha256(text.encode()).hexdigest()


class GateSync:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        publisher: Publisher,
        store: GalleryStore,
        base_url: str | None,
        *,
        every_s: float = 2.0,
        resend_s: float = 30.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessions = sessions
        self.publisher = publisher
        self.store = store
        self.base_url = base_url
        self.every_s = every_s
        self.resend_s = resend_s
        self.clock = clock
        self._gallery_sent: dict[tuple[str, str], int] = {}
        self._passes_sent: dict[tuple[str, str], str] = {}
        self._last_version = 0
        self._published_at: dict[str, float] = {}
        self._fresh: set[str] = set()
        """Commands published in the current round (never re-sent in the same round)."""
        self.sent = 0
        self.resent = 0

    async def run(self) -> None:
        while True:
            await asyncio.to_thread(self.tick)
            await asyncio.sleep(self.every_s)

    def tick(self) -> None:
        """One round: new gallery versions, changed pass sets, re-sends."""
        now = self.clock()
        self._fresh.clear()
        with self.sessions() as session:
            gateways = session.execute(
                select(Gateway.site, Gateway.id).where(Gateway.approval != Approval.REJECTED.value)
            ).all()
            info = self.store.latest()
            by_site: dict[str, list[str]] = {}
            for site, gateway in gateways:
                by_site.setdefault(site, []).append(gateway)
            for site, members in by_site.items():
                passes = active_passes(session, site, now)
                mark = fingerprint(passes)
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
                    if key not in self._passes_sent and not passes and not _had(session, key):
                        self._passes_sent[key] = mark  # never had a pass: nothing to clear
                    if self._passes_sent.get(key) != mark:
                        version = max(int(now.timestamp() * 1000), self._last_version + 1)
                        self._last_version = version
                        body = PassesSync(version=version, passes=passes).params()
                        self._send(session, key, PASSES_COMMAND, dict(body), now, PASSES_TTL)
                        self._passes_sent[key] = mark
            session.commit()
            self._resend(session, now)

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
        except PublishQueueFull as exc:  # the re-send picks it up later
            log.warning("%s to %s/%s not queued: %s", command.name, site, gateway, exc)
            return
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
        for row in newest.values():
            if row.status != CommandStatus.SENT.value:
                self._published_at.pop(row.cmd_id, None)
                continue
            last = self._published_at.get(row.cmd_id)
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

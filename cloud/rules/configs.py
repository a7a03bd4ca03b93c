"""Each gateway's rule set, published retained on its ``config`` channel (GatewayConfig).

The edge rules (``runs_on: edge|both``) of the packs this cloud runs go to every approved
gateway at start and again when a gateway comes online. ``version`` grows only when the content
changes (a gateway ignores an older version), so a restart republishes the same version.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands.publisher import Publisher, PublishQueueFull
from cloud.registry.tables import Approval, Gateway
from cloud.rules.tables import GatewayConfigRow
from protocols.messages import GatewayConfig
from protocols.rules.language import RuleSet

log = logging.getLogger(__name__)


class ConfigPusher:
    def __init__(
        self, ruleset: RuleSet, sessions: sessionmaker[Session], publisher: Publisher
    ) -> None:
        self.edge_rules = ruleset.for_edge()
        self.fingerprint = hashlib.sha256(self.edge_rules.fingerprint().encode()).hexdigest()
        self.sessions = sessions
        self.publisher = publisher
        self.published = 0

    def config_for(self, site: str, gateway: str) -> GatewayConfig | None:
        """The GatewayConfig for an approved gateway (recording a new version if the rules
        changed); None for a gateway that is unknown or not approved."""
        now = datetime.now(UTC)
        try:
            version = self._record(site, gateway, now)
        except IntegrityError:
            # Another cloud process (e.g. `--role rules` beside `--role ingest`) recorded this
            # gateway's first version at the same moment: its row is there now, so read it.
            version = self._record(site, gateway, now)
        if version is None:
            return None
        return GatewayConfig(version=version, issued_at=now, rules=self.edge_rules.to_config())

    def _record(self, site: str, gateway: str, now: datetime) -> int | None:
        with self.sessions.begin() as db:
            known = db.get(Gateway, (site, gateway))
            if known is None or known.approval != Approval.APPROVED.value:
                return None
            # Locked (PostgreSQL) so two processes with new rules bump the version once each.
            row = db.get(GatewayConfigRow, (site, gateway), with_for_update=True)
            if row is None:
                row = GatewayConfigRow(
                    site=site, gateway=gateway, version=1, fingerprint=self.fingerprint
                )
                db.add(row)
            elif row.fingerprint != self.fingerprint:
                row.version += 1
                row.fingerprint = self.fingerprint
            row.published_at = now
            return row.version

    async def push(self, site: str, gateway: str) -> None:
        config = await asyncio.to_thread(self.config_for, site, gateway)
        if config is None:
            log.info("no rules for %s/%s: gateway not approved", site, gateway)
            return
        try:
            self.publisher.send(site, gateway, config)
            self.published += 1
        except PublishQueueFull as exc:
            log.error("config for %s/%s not published: %s", site, gateway, exc)

    def _approved(self) -> list[tuple[str, str]]:
        with self.sessions() as db:
            rows = db.execute(
                select(Gateway.site, Gateway.id).where(Gateway.approval == Approval.APPROVED.value)
            ).all()
        return [(site, gw) for site, gw in rows]

    async def push_all(self) -> int:
        """Publish to every approved gateway; returns how many."""
        gateways = await asyncio.to_thread(self._approved)
        for site, gateway in gateways:
            await self.push(site, gateway)
        return len(gateways)

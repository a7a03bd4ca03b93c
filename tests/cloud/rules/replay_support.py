"""Helpers for the rules replay tests: a site with one smoke detector, stored as ingest does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service
from cloud.ingest.buffer import Delivery
from cloud.ingest.models import StoredMessage
from cloud.ingest.store import BatchWriter
from cloud.notify.dispatcher import Notifier
from cloud.notify.hub import Hub
from cloud.registry.service import Registry
from cloud.registry.sitefile import SiteFile
from cloud.rules.effects import Effects
from cloud.rules.lookup import RegistryLookup
from cloud.rules.runner import RulesRunner
from cloud.settings import Settings
from protocols.codec import encode, new_id
from protocols.messages import Model, Reading, Telemetry
from protocols.rules import default_pack
from protocols.topics import Channel, topic

SITE = "s1"
SMOKE = "smoke-1"


def import_site(sessions: sessionmaker[Session]) -> Registry:
    registry = Registry(sessions.kw["bind"])
    site = SiteFile.model_validate(
        {
            "site": SITE,
            "zones": [{"id": "z1"}],
            "gateways": [
                {"id": "gw1", "devices": [{"id": SMOKE, "kind": "smoke", "zone": "z1"}]},
            ],
        }
    )
    with sessions.begin() as db:
        registry.import_site(db, site)
    return registry


def make_runner(
    sessions: sessionmaker[Session], registry: Registry, shard: tuple[int, int] = (0, 1)
) -> RulesRunner:
    settings = Settings(db_url="sqlite://", mqtt_enabled=False)
    hub = Hub()
    effects = Effects(settings, sessions, Notifier(settings.channels, sessions, hub), hub, None)
    lookup = RegistryLookup(registry, sessions)
    return RulesRunner(
        default_pack(), sessions, lookup, effects, hub, shard_index=shard[0], shard_count=shard[1]
    )


class Gateway:
    def __init__(self) -> None:
        self.boot = new_id()
        self.seq = 0

    def smoke(self, value: bool, ts: datetime | None = None, *, seq: int | None = None) -> Model:
        ts = ts or datetime.now(UTC)
        if seq is None:
            seq = self.seq
            self.seq += 1
        return Telemetry(
            msg_id=new_id(),
            boot_id=self.boot,
            seq=seq,
            ts=ts,
            readings=(Reading(device=SMOKE, metric="smoke", value=value, ts=ts),),
        )


def store(
    sessions: sessionmaker[Session], registry: Registry, messages: Sequence[Model]
) -> list[StoredMessage]:
    """Store as ingest does (one committed transaction) and return what ``on_stored`` gets."""
    now = datetime.now(UTC)
    writer = BatchWriter(sessions.kw["bind"], registry)
    deliveries = [
        Delivery(topic(SITE, "gw1", Channel.TELEMETRY), encode(m), i, 1, now)
        for i, m in enumerate(messages)
    ]
    return writer.write(deliveries).stored


def smoke_alerts(sessions: sessionmaker[Session]) -> list[tuple[str, bool]]:
    with sessions() as db:
        found = service.list_alerts(db, service.AlertFilter(rule_id="smoke-alarm"))
    return [(a.subject, a.cleared) for a in found]

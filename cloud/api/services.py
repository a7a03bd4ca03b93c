"""What the lifespan builds and the routers use, on ``app.state.services``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection

from cloud.alerts.escalator import Escalator
from cloud.commands.publisher import Publisher
from cloud.ingest.service import Ingest
from cloud.notify.dispatcher import Notifier
from cloud.notify.hub import Hub
from cloud.registry.service import Registry
from cloud.rules.configs import ConfigPusher
from cloud.rules.effects import Effects
from cloud.rules.lookup import RegistryLookup
from cloud.rules.runner import RulesRunner
from cloud.settings import Settings
from protocols.rules.language import RuleSet


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    registry: Registry
    hub: Hub
    notifier: Notifier
    effects: Effects
    escalator: Escalator
    ruleset: RuleSet
    rule_sources: tuple[str, ...]
    publisher: Publisher | None = None
    runner: RulesRunner | None = None
    ingest: Ingest | None = None
    pusher: ConfigPusher | None = None
    lookup: RegistryLookup | None = None
    task_failures: dict[str, int] = field(default_factory=dict)
    ingest_ready: asyncio.Event = field(default_factory=asyncio.Event)


def get_services(conn: HTTPConnection) -> Services:
    services: Services | None = getattr(conn.app.state, "services", None)
    if services is None:
        raise RuntimeError("the app's lifespan has not started (use it as a context manager)")
    return services


Svc = Annotated[Services, Depends(get_services)]

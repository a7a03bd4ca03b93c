"""Wake-ups for :class:`cloud.gate.sync.GateSync`: the writes that change what gateways need.

A writer calls :func:`announce` inside its transaction (visitor pass issued or revoked, gallery
version published); nothing happens unless it commits. Then

* every ``GateSync`` of this process on the same database wakes (:func:`subscribe`), and
* on PostgreSQL, ``pg_notify('linli_gate', site)`` reaches every cloud process that listens
  (:func:`listen`) — e.g. ``linli faces enroll … --db URL --publish`` run from a shell wakes
  the running cloud.

On SQLite a writer in *another* process (the faces CLI against the cloud's SQLite file) has no
way to reach the cloud: its change waits for the sync's safety poll (``GateSync.poll_s``).

Stored messages that concern the sync (:func:`wakes_sync`: a granted visitor pass event, a
gateway's birth) reach it through ingest's ``on_stored`` hook; an ingest-only process (a member
of a shared group, where the sync does not run) forwards them by NOTIFY (:func:`stored_hook`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest.models import OnStored, StoredMessage
from protocols.messages import AccessDecision, AccessEvent, GatewayState, GatewayStatus

log = logging.getLogger(__name__)
CHANNEL = "linli_gate"
EVERY_SITE = ""
"""The notification payload for a change of every site (a new gallery version)."""
Wake = Callable[[str | None], None]
_INFO_KEY = "linli.gate.announced"
_lock = threading.Lock()
_subscribers: dict[str, list[Wake]] = {}


def database_key(engine: Engine) -> str:
    """The same database gives the same key whichever engine (and path spelling) reaches it."""
    url = engine.url
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        return f"sqlite:{os.path.realpath(str(url.database))}"
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def subscribe(engine: Engine, wake: Wake) -> Callable[[], None]:
    """Call ``wake(site)`` after each commit that announced a change on this database (in this
    process). Returns the function that unsubscribes."""
    key = database_key(engine)
    with _lock:
        _subscribers.setdefault(key, []).append(wake)

    def unsubscribe() -> None:
        with _lock:
            wakes = _subscribers.get(key, [])
            if wake in wakes:
                wakes.remove(wake)
            if not wakes:
                _subscribers.pop(key, None)

    return unsubscribe


def announce(session: Session, site: str | None) -> None:
    """Say, inside the writer's transaction, that what gateways of ``site`` (None: every site)
    need has changed. Takes effect at commit."""
    engine = session.get_bind().engine
    if engine.dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, site or EVERY_SITE)))
    sites: set[str | None] | None = session.info.get(_INFO_KEY)
    if sites is None:
        sites = session.info[_INFO_KEY] = set()
        event.listen(session, "after_commit", _after_commit, once=True)
    sites.add(site)


def _after_commit(session: Session) -> None:
    sites: set[str | None] = session.info.pop(_INFO_KEY, set())
    with _lock:
        wakes = list(_subscribers.get(database_key(session.get_bind().engine), ()))
    for site in sites:
        for wake in wakes:
            wake(site)


async def listen(engine: Engine, wake: Wake, *, max_backoff_s: float = 30.0) -> None:
    """PostgreSQL only: ``LISTEN linli_gate`` and wake on each notification, until cancelled.
    Reconnects with capped, jittered backoff; after each (re)connection it wakes once (a change
    may have been missed while it was not listening)."""
    import psycopg

    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    backoff = 0.5
    while True:
        try:
            conn: psycopg.AsyncConnection[Any]
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                backoff = 0.5
                wake(None)
                async for note in conn.notifies():
                    wake(note.payload or None)
        except psycopg.OperationalError as exc:
            log.warning("gate change listener: %s; again in %.1fs", exc, backoff)
            await asyncio.sleep(backoff * (0.5 + random.random() / 2))
            backoff = min(max_backoff_s, backoff * 2)


def wakes_sync(message: object) -> bool:
    """A stored message the sync acts on: a granted visitor pass (a use to record and pass on)
    or a gateway coming online (it gets the gallery and the passes)."""
    if isinstance(message, AccessEvent):
        return message.reason == "visitor_pass" and message.decision is AccessDecision.GRANTED
    return isinstance(message, GatewayState) and message.status is GatewayStatus.ONLINE


def stored_hook(engine: Engine) -> OnStored:
    """For an ingest-only process on PostgreSQL: NOTIFY the sync (which runs elsewhere) of the
    stored messages it acts on."""

    def notify(sites: set[str]) -> None:
        with engine.begin() as conn:
            for site in sorted(sites):
                conn.execute(select(func.pg_notify(CHANNEL, site)))

    async def hook(batch: Sequence[StoredMessage]) -> None:
        sites = {s.site for s in batch if not s.duplicate and wakes_sync(s.message)}
        if sites:
            await asyncio.to_thread(notify, sites)

    return hook

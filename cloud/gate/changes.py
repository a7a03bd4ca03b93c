"""Wake-ups for :class:`cloud.gate.sync.GateSync`: the writes that change what gateways need.

A writer calls :func:`announce` inside its transaction (visitor pass issued or revoked,
gallery version published); nothing happens unless it commits. Then (:mod:`cloud.signals`,
channel ``linli_gate``, payload = the site)

* every ``GateSync`` of this process on the same database wakes at once (:func:`subscribe`),
  and
* the ``GateSync`` of every other cloud process on that database (:func:`listen`) — e.g.
  ``linli faces enroll … --db URL --publish`` run from a shell wakes the running cloud: on
  PostgreSQL by NOTIFY, on SQLite within about half a second (a counter the writer bumps).

Stored messages that concern the sync (:func:`wakes_sync`: a granted visitor pass event, a
gateway's birth) reach it through ingest's ``on_stored`` hook; an ingest-only process (a member
of a shared group, where the sync does not run) forwards them as signals (:func:`stored_hook`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud import signals
from cloud.ingest.models import OnStored, StoredMessage
from protocols.messages import AccessDecision, AccessEvent, GatewayState, GatewayStatus

log = logging.getLogger(__name__)
CHANNEL = "linli_gate"
EVERY_SITE = ""
"""The payload of a change of every site (a new gallery version)."""
Wake = Callable[[str | None], None]
database_key = signals.database_key


def subscribe(engine: Engine, wake: Wake) -> Callable[[], None]:
    """Call ``wake(site)`` after each commit that announced a change on this database (in this
    process). Returns the function that unsubscribes."""
    return signals.subscribe(engine, CHANNEL, lambda site: wake(site or None))


def announce(session: Session, site: str | None) -> None:
    """Say, inside the writer's transaction, that what gateways of ``site`` (None: every site)
    need has changed. Takes effect at commit."""
    signals.announce(session, CHANNEL, site or EVERY_SITE)


async def listen(
    engine: Engine, wake: Wake, *, poll_s: float = signals.POLL_S, ignore_own: bool = True
) -> None:
    """Wake on each change another process commits, until cancelled (``wake(None)``: not
    known which site — always on SQLite, and once after each (re)connection)."""

    def heard(channel: str, site: str | None) -> None:
        wake(site or None)

    await signals.listen(engine, [CHANNEL], heard, poll_s=poll_s, ignore_own=ignore_own)


def wakes_sync(message: object) -> bool:
    """A stored message the sync acts on: a granted visitor pass (a use to record and pass on)
    or a gateway coming online (it gets the gallery and the passes)."""
    if isinstance(message, AccessEvent):
        return message.reason == "visitor_pass" and message.decision is AccessDecision.GRANTED
    return isinstance(message, GatewayState) and message.status is GatewayStatus.ONLINE


def stored_hook(engine: Engine) -> OnStored:
    """For an ingest-only process: signal the sync (which runs elsewhere) of the stored
    messages it acts on."""

    async def hook(batch: Sequence[StoredMessage]) -> None:
        sites = {s.site for s in batch if not s.duplicate and wakes_sync(s.message)}
        if sites:
            await asyncio.to_thread(signals.notify_now, engine, CHANNEL, sorted(sites))

    return hook

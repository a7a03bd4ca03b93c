"""What ingest hands to its consumers after a durable commit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from protocols.messages import GatewayState, UplinkMessage
from protocols.topics import Topic


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One decoded uplink message, already committed to the database.

    ``duplicate``: the msg_id was stored before (a redelivery or replay); its rows were not
    written again and consumers should normally skip it. ``pending``: the gateway is not
    approved, or every device the message speaks for is not (stored but flagged; rules should
    not act on it). ``pending_devices``: the devices in it that are not approved (their
    readings are flagged; :meth:`cloud.registry.Registry.lookup` returns None for them, so
    rules skip them even in a message that is not pending as a whole).
    ``row_id``: the ``ingest_messages.id`` of the stored row (None for duplicates and gateway
    states, which have no row). One ingest process hands them out increasing; with several on
    PostgreSQL a smaller id may commit later (ids come from a sequence before the commit).
    Gateway births and wills arrive here too (``message`` is a :class:`GatewayState`).
    """

    topic: Topic
    message: UplinkMessage
    duplicate: bool = False
    pending: bool = False
    pending_devices: frozenset[str] = frozenset()
    row_id: int | None = None

    @property
    def site(self) -> str:
        return self.topic.site

    @property
    def gateway(self) -> str:
        return self.topic.gateway

    @property
    def is_state(self) -> bool:
        return isinstance(self.message, GatewayState)


OnStored = Callable[[Sequence[StoredMessage]], Awaitable[None]]
"""Called after each commit with that batch's messages in arrival order."""

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
    written again and consumers should normally skip it. ``pending``: the gateway or a device
    in it is not approved in the registry (stored but flagged; rules should not act on it).
    Gateway births and wills arrive here too (``message`` is a :class:`GatewayState`).
    """

    topic: Topic
    message: UplinkMessage
    duplicate: bool = False
    pending: bool = False

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

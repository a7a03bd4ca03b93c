"""Envelope fields are assigned when a message is made: msg_id, boot id, per-boot seq, ts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from protocols.codec import new_id
from protocols.messages import Envelope

E = TypeVar("E", bound=Envelope)


class Stamper:
    """Makes envelope messages of one boot. ``seq`` counts every message made, from 0.

    The cloud reports a gap in a boot's sequence as lost data, so make a message only when you
    are about to store it (``agent.emit(agent.stamp(...))``).
    """

    __slots__ = ("boot_id", "next_seq")

    def __init__(self, boot_id: str | None = None) -> None:
        self.boot_id = boot_id or new_id()
        self.next_seq = 0  # the seq the next message will get

    def stamp(self, model: type[E], *, ts: datetime | None = None, **fields: Any) -> E:
        """Make one message; a message that fails validation does not use up a seq."""
        message = model(
            msg_id=new_id(),
            boot_id=self.boot_id,
            seq=self.next_seq,
            ts=ts or datetime.now(UTC),
            **fields,
        )
        self.next_seq += 1
        return message


def utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)

"""``visitor_pass_uses``: each use of a visitor pass at a door, as the gateway reported it.

A use is the access event of a granted pass (reason ``visitor_pass``, ``attrs.pass_id`` =
``vp<id>``); its ``msg_id`` is unique here, so a redelivered or replayed event counts once.
``visitor_passes.uses`` is kept equal to the number of rows of the pass (the console and the
next ``passes.sync`` read it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cloud.db import Base
from cloud.storage.types import UTCDateTime


class VisitorPassUse(Base):
    __tablename__ = "visitor_pass_uses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pass_id: Mapped[int] = mapped_column(
        ForeignKey("visitor_passes.id", ondelete="CASCADE"), index=True
    )
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    event_id: Mapped[int] = mapped_column(
        BigInteger, index=True, doc="access_events.id (where the next scan resumes)"
    )
    site: Mapped[str] = mapped_column(String(64))
    gateway: Mapped[str] = mapped_column(String(64))
    door: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

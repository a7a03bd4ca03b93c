"""Helpers for storage tests: gateway messages as deliveries, straight into the batch writer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from cloud.ingest.buffer import Delivery
from protocols.codec import channel_of, encode, new_id
from protocols.messages import Model, Reading, Telemetry
from protocols.topics import topic

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
_mids = itertools.count(1)


class Gateway:
    def __init__(self, site: str, gateway: str = "gw1", boot_id: str | None = None) -> None:
        self.site = site
        self.gateway = gateway
        self.boot_id = boot_id or new_id()

    def telemetry(
        self,
        seq: int,
        values: dict[str, float] | None = None,
        ts: datetime | None = None,
        historical: bool = False,
        metric: str = "temperature",
    ) -> Telemetry:
        ts = ts or T0 + timedelta(seconds=seq)
        values = values or {"d1": 1.0}
        return Telemetry(
            msg_id=new_id(),
            boot_id=self.boot_id,
            seq=seq,
            ts=ts,
            historical=historical,
            readings=tuple(
                Reading(device=d, metric=metric, value=v, ts=ts) for d, v in values.items()
            ),
        )

    def deliver(self, *messages: Model) -> list[Delivery]:
        return [
            Delivery(
                topic(self.site, self.gateway, channel_of(m)),
                encode(m),
                next(_mids),
                1,
                datetime.now(UTC),
            )
            for m in messages
        ]

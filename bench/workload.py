"""The ingest benchmarks' telemetry: GATEWAYS gateways, each boot numbering its messages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from protocols.codec import new_id
from protocols.messages import Reading, Telemetry

GATEWAYS = 10


def telemetry(messages: int, readings: int) -> Iterator[tuple[str, Telemetry]]:
    """(gateway id, message): ``messages`` messages of ``readings`` temperatures each, dealt
    round-robin over GATEWAYS gateways, 1 ms apart."""
    boots = [new_id() for _ in range(GATEWAYS)]
    t0 = datetime.now(UTC)
    for i in range(messages):
        g = i % GATEWAYS
        ts = t0 + timedelta(milliseconds=i)
        yield (
            f"gw{g}",
            Telemetry(
                msg_id=new_id(),
                boot_id=boots[g],
                seq=i // GATEWAYS,
                ts=ts,
                readings=tuple(
                    Reading(device=f"g{g}-d{k}", metric="temperature", value=20 + k / 10, ts=ts)
                    for k in range(readings)
                ),
            ),
        )

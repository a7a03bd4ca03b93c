"""Copy stored readings to an InfluxDB-protocol server through influxdb-client's batching writer.

Plug it into ingest as (part of) the ``on_stored`` hook. :meth:`InfluxSink.on_stored` only
formats line protocol and hands it to the client's background batcher, so a slow or stopped
server never blocks ingest: failed batches are retried with exponential backoff until
``max_retry_time_s``, and at most ``max_pending_points`` wait in memory (more are dropped and
counted; the SQL store stays the source of truth).

Each reading becomes one point: measurement ``reading``, tags ``site``, ``gateway``,
``device`` (and ``historical=true`` for replayed data), field ``<metric>`` (booleans as 0/1),
time of the reading in milliseconds. VictoriaMetrics names the series ``reading_<metric>``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import WriteApi, WriteOptions, WriteType
from pydantic import BaseModel, ConfigDict, Field

from cloud.ingest.models import StoredMessage
from protocols.messages import Telemetry

log = logging.getLogger(__name__)

MEASUREMENT = "reading"


class InfluxSinkConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="e.g. http://127.0.0.1:8086 (InfluxDB 2) or VictoriaMetrics")
    token: str = Field("", description="API token (empty for VictoriaMetrics)")
    org: str = "linli"
    bucket: str = "linli"
    batch_size: int = Field(5000, ge=1, le=100_000)
    flush_interval_ms: int = Field(1000, ge=10)
    retry_interval_ms: int = Field(1000, ge=10, description="First retry delay")
    max_retry_delay_ms: int = Field(30_000, ge=10)
    max_retry_time_s: int = Field(3600, ge=1, description="Give a batch up after this long")
    max_pending_points: int = Field(
        1_000_000, ge=1, description="Points waiting for the server at most; more are dropped"
    )
    timeout_ms: int = Field(10_000, ge=100)


@dataclass(slots=True)
class SinkStats:
    queued: int = 0
    written: int = 0
    retries: int = 0
    failed: int = 0  # given up after max_retry_time_s
    dropped: int = 0  # refused because max_pending_points were waiting

    @property
    def pending(self) -> int:
        return self.queued - self.written - self.failed


def lines(stored: Sequence[StoredMessage]) -> list[str]:
    """Line protocol for the numeric readings of a batch (duplicates skipped)."""
    out: list[str] = []
    for item in stored:
        msg = item.message
        if item.duplicate or not isinstance(msg, Telemetry):
            continue
        tags = f"{MEASUREMENT},site={item.site},gateway={item.gateway}"
        hist = ",historical=true" if msg.historical else ""
        for r in msg.readings:
            # Ids and metric names never need escaping: protocols restricts their characters.
            value = float(r.value)
            ms = int(r.ts.timestamp() * 1000)
            out.append(f"{tags},device={r.device}{hist} {r.metric}={value!r} {ms}")
    return out


class InfluxSink:
    """``async with``-free: create, pass :meth:`on_stored` to ingest, :meth:`close` at exit."""

    def __init__(self, config: InfluxSinkConfig) -> None:
        self.config = config
        self.stats = SinkStats()
        self._lock = threading.Lock()
        self._client = InfluxDBClient(
            url=config.url, token=config.token, org=config.org, timeout=config.timeout_ms
        )
        options = WriteOptions(
            write_type=WriteType.batching,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval_ms,
            retry_interval=config.retry_interval_ms,
            max_retries=1_000_000,  # bounded by max_retry_time instead
            max_retry_delay=config.max_retry_delay_ms,
            max_retry_time=config.max_retry_time_s * 1000,
            exponential_base=2,
        )
        self._write: WriteApi = self._client.write_api(
            write_options=options,
            success_callback=self._on_success,
            error_callback=self._on_error,
            retry_callback=self._on_retry,
        )

    async def on_stored(self, stored: Sequence[StoredMessage]) -> None:
        """Queue a batch's readings (never waits for the server)."""
        self.write_lines(lines(stored))

    def write_lines(self, data: list[str]) -> None:
        if not data:
            return
        with self._lock:
            if self.stats.pending + len(data) > self.config.max_pending_points:
                self.stats.dropped += len(data)
                log.warning("time-series sink backlog full: dropped %d points", len(data))
                return
            self.stats.queued += len(data)
        self._write.write(
            bucket=self.config.bucket,
            org=self.config.org,
            record=data,
            write_precision="ms",  # type: ignore[arg-type]
        )

    def close(self) -> None:
        """Flush what can be flushed and stop the background writer."""
        self._write.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]

    # -- callbacks from the client's writer thread -------------------------------------------

    @staticmethod
    def _count(data: Any) -> int:
        text = data.decode() if isinstance(data, bytes) else str(data)
        return text.count("\n") + 1 if text else 0

    def _on_success(self, conf: tuple[str, str, str], data: Any) -> None:
        with self._lock:
            self.stats.written += self._count(data)

    def _on_error(self, conf: tuple[str, str, str], data: Any, exc: Exception) -> None:
        n = self._count(data)
        with self._lock:
            self.stats.failed += n
        log.error("time-series sink gave up on %d points: %s", n, exc)

    def _on_retry(self, conf: tuple[str, str, str], data: Any, exc: Exception) -> None:
        with self._lock:
            self.stats.retries += 1
        log.info("time-series sink retrying a batch: %s", exc)

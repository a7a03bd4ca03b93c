"""The InfluxDB-protocol sink against a real VictoriaMetrics, including an outage."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import httpx
import pytest
from sqlalchemy.engine import Engine

from cloud.ingest import Ingest, StoredMessage
from cloud.registry import Registry
from cloud.sinks import InfluxSink, InfluxSinkConfig
from cloud.sinks.influx import lines
from cloud.storage.tables import Reading
from linli.services import Mosquitto, VictoriaMetrics
from protocols.codec import new_id
from protocols.messages import Reading as WireReading
from protocols.messages import Telemetry
from protocols.topics import Channel, Topic
from tests.cloud.ingest.ingest_support import Gateway, Publisher, config, count, running, until
from tests.cloud.storage.storage_support import T0


def exported(vm: VictoriaMetrics, site: str) -> dict[tuple[str, str], list[float]]:
    """(series name, device) → values, read back through VictoriaMetrics' export API."""
    resp = httpx.get(
        f"{vm.url}/api/v1/export", params={"match[]": f'{{site="{site}"}}'}, timeout=10
    )
    resp.raise_for_status()
    out: dict[tuple[str, str], list[float]] = {}
    for line in resp.text.splitlines():
        row = json.loads(line)
        key = (row["metric"]["__name__"], row["metric"]["device"])
        out.setdefault(key, []).extend(row["values"])
    return out


def wait_exported(
    vm: VictoriaMetrics, site: str, points: int, within: float = 30
) -> dict[tuple[str, str], list[float]]:
    deadline = time.monotonic() + within
    # Make freshly written rows searchable now instead of after VictoriaMetrics' flush interval.
    httpx.get(f"{vm.url}/internal/force_flush", timeout=10).raise_for_status()
    while True:
        got = exported(vm, site)
        if sum(len(v) for v in got.values()) >= points or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def stored(site: str, historical: bool = False, dup: bool = False) -> StoredMessage:
    msg = Telemetry(
        msg_id=new_id(),
        boot_id="boot-0000000001",
        seq=0,
        ts=T0,
        historical=historical,
        readings=(
            WireReading(device="t-1", metric="temperature", value=21.5, ts=T0),
            WireReading(device="smoke-1", metric="smoke", value=True, ts=T0),
        ),
    )
    return StoredMessage(Topic(site, "gw1", Channel.TELEMETRY), msg, duplicate=dup)


def test_line_protocol_numeric_only_and_duplicates_skipped(site: str) -> None:
    out = lines([stored(site), stored(site, historical=True), stored(site, dup=True)])
    ms = int(T0.timestamp() * 1000)
    assert out == [
        f"reading,site={site},gateway=gw1,device=t-1 temperature=21.5 {ms}",
        f"reading,site={site},gateway=gw1,device=smoke-1 smoke=1.0 {ms}",
        f"reading,site={site},gateway=gw1,device=t-1,historical=true temperature=21.5 {ms}",
        f"reading,site={site},gateway=gw1,device=smoke-1,historical=true smoke=1.0 {ms}",
    ]


@pytest.mark.anyio
async def test_sink_writes_to_victoria_metrics(victoria: VictoriaMetrics, site: str) -> None:
    sink = InfluxSink(InfluxSinkConfig(url=victoria.url, flush_interval_ms=100))
    try:
        await sink.on_stored([stored(site)])
    finally:
        sink.close()
    got = wait_exported(victoria, site, 2)
    assert got == {("reading_temperature", "t-1"): [21.5], ("reading_smoke", "smoke-1"): [1.0]}
    assert (sink.stats.written, sink.stats.failed, sink.stats.pending) == (2, 0, 0)


@pytest.mark.anyio
async def test_stopped_server_does_not_block_ingest_and_data_arrives_later(
    engine: Engine, mosquitto: Mosquitto, site: str
) -> None:
    vm = VictoriaMetrics()  # port reserved, server not started yet
    sink = InfluxSink(
        InfluxSinkConfig(
            url=vm.url,
            flush_interval_ms=100,
            retry_interval_ms=200,
            max_retry_delay_ms=1000,
            timeout_ms=1000,
        )
    )
    gw = Gateway(site)
    publisher = Publisher(mosquitto.port)

    async def hook(batch: Sequence[StoredMessage]) -> None:
        await sink.on_stored(batch)

    ingest = Ingest(config(mosquitto, site), engine, Registry(engine), on_stored=hook)
    try:
        async with running(ingest):
            publisher.send([gw.frame(gw.telemetry(readings=5)) for _ in range(20)])
            await until(lambda: count(engine, Reading.id) == 100)  # ingest goes on
            await until(lambda: sink.stats.retries >= 1)
            assert sink.stats.written == 0 and sink.stats.pending == 100
            vm.start()
            await until(lambda: sink.stats.written == 100)
        got = wait_exported(vm, site, 100)
        assert sum(len(v) for v in got.values()) == 100
        assert set(got) == {("reading_temperature", f"d1-{i}") for i in range(5)}
    finally:
        publisher.close()
        sink.close()
        vm.__exit__(None, None, None)

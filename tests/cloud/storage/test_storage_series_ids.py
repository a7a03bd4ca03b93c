"""Series ids: two writers creating the same series at once, and a cache of committed ids only."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest.store import BatchWriter
from cloud.registry import Registry
from cloud.storage.series import SeriesIds, SeriesKey
from cloud.storage.tables import Reading, Series
from tests.cloud.storage.storage_support import Gateway


def test_two_writers_creating_the_same_series_at_once(engine: Engine, site: str) -> None:
    """Members of a shared group get messages of the same gateway and devices: each inserts
    or gets the same series rows, and every reading is stored once under them."""
    gw = Gateway(site)
    devices = {f"d{i}": float(i) for i in range(30)}
    # The devices are registered first (their humidity) and the registries loaded after:
    # concurrent registration is the registry's matter (ingest retries a batch it refused,
    # then refreshes its registry); the temperature series are new to both writers.
    BatchWriter(engine, Registry(engine)).write(
        gw.deliver(gw.telemetry(0, devices, metric="humidity"))
    )
    writers = [BatchWriter(engine, Registry(engine)) for _ in range(2)]
    messages = [gw.telemetry(seq, devices) for seq in range(1, 41)]
    start = threading.Barrier(2)

    def member(index: int) -> int:
        writer, mine = writers[index], messages[index::2]
        start.wait()
        return sum(writer.write(gw.deliver(m)).readings for m in mine)

    with ThreadPoolExecutor(2) as pool:
        stored = sum(pool.map(member, range(2)))
    assert stored == 40 * 30
    with Session(engine) as s:
        mine = select(Series.device, Series.id).where(Series.metric == "temperature")
        rows = {d: i for d, i in s.execute(mine.where(Series.site == site))}
        counts = select(Reading.series, func.count()).group_by(Reading.series)
        per_series = {i: n for i, n in s.execute(counts.where(Reading.series.in_(rows.values())))}
    assert sorted(rows) == sorted(devices)
    assert per_series == {sid: 40 for sid in rows.values()}
    for writer in writers:  # each member's cache holds the committed ids
        assert {d: writer.series.get((site, d, "temperature", "gw1")) for d in devices} == rows


def test_ids_of_a_rolled_back_transaction_are_not_cached(engine: Engine, site: str) -> None:
    ids = SeriesIds()
    key: SeriesKey = (site, "d1", "temperature", "gw1")
    with Session(engine) as s, s.begin():
        learned = ids.resolve(s, [key])
        s.rollback()  # the batch failed: its series row is gone
    assert key in learned and ids.get(key) is None
    with Session(engine) as s, s.begin():
        again = ids.resolve(s, [key])
    ids.commit(again)
    assert ids.get(key) == again[key]
    with Session(engine) as s:
        assert s.scalar(select(Series.id).where(Series.site == site)) == again[key]


def test_the_cache_is_bounded() -> None:
    ids = SeriesIds(capacity=4)
    keys: list[SeriesKey] = [("s", f"d{i}", "m", "g") for i in range(10)]
    for i, key in enumerate(keys):
        ids.commit({key: i})
        assert len(ids) <= 4
    assert ids.get(keys[-1]) == 9  # the newest stay
    assert ids.get(keys[0]) is None  # the oldest went
    with pytest.raises(ValueError, match="capacity"):
        SeriesIds(capacity=1)

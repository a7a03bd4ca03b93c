"""The rules watermark and the database feed, on SQLite and PostgreSQL (``db_url``).

Messages are stored by ingest's real writer (``BatchWriter``); a "crash" is a runner that never
evaluates what was stored. Alerts land in the real database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.tables import Alert
from cloud.registry.service import Registry
from cloud.rules.config import FeedConfig
from cloud.rules.feed import StoredFeed
from cloud.rules.runner import RulesRunner, shard_of
from cloud.storage.tables import Reading as ReadingRow
from cloud.storage.tables import StoredEnvelope
from protocols.messages import Telemetry
from tests.cloud.rules.replay_support import (
    SITE,
    SMOKE,
    Gateway,
    import_site,
    make_runner,
    smoke_alerts,
    store,
)


async def restart(sessions: sessionmaker[Session], registry: Registry) -> RulesRunner:
    """A new process: restore the snapshot, replay what was stored since, apply the actions."""
    runner = make_runner(sessions, registry)
    runner.restore_state()
    await StoredFeed(runner, FeedConfig()).catch_up()
    await runner.effects.run_once()
    return runner


@pytest.mark.anyio
async def test_a_batch_stored_but_not_evaluated_before_a_crash_raises_once_after_restart(
    sessions: sessionmaker[Session],
) -> None:
    registry = import_site(sessions)
    gateway = Gateway()
    first = make_runner(sessions, registry)
    assert not first.restore_state()  # first start: the watermark is the end of the store
    store(sessions, registry, [gateway.smoke(False)])
    await first.process(store(sessions, registry, [gateway.smoke(False)]))
    await first.checkpoint()
    # Ingest commits (and acknowledges) a smoke alarm; the process dies before the rules
    # evaluate it: on_stored's batch is never processed.
    stored = store(sessions, registry, [gateway.smoke(True)])
    assert stored[0].row_id is not None and stored[0].row_id > first.watermark
    assert smoke_alerts(sessions) == []

    second = await restart(sessions, registry)
    assert smoke_alerts(sessions) == [(SMOKE, False)]
    assert second.counts["replayed"] == 1 and second.watermark == stored[0].row_id
    assert second.effects.counts["raise_created"] == 1

    # It crashes too, before its next checkpoint: the third start evaluates the alarm again,
    # and the alert service keeps the one active alert.
    third = await restart(sessions, registry)
    assert third.counts["replayed"] == 1
    assert smoke_alerts(sessions) == [(SMOKE, False)]
    assert third.effects.counts["raise_created"] == 0

    # A checkpoint, then a normal restart: nothing is replayed, nothing raised.
    await third.checkpoint()
    fourth = await restart(sessions, registry)
    assert fourth.counts["replayed"] == 0 and fourth.effects.submitted == 0
    assert smoke_alerts(sessions) == [(SMOKE, False)]


@pytest.mark.anyio
async def test_a_normal_restart_does_not_evaluate_again(
    sessions: sessionmaker[Session],
) -> None:
    registry = import_site(sessions)
    gateway = Gateway()
    live = make_runner(sessions, registry)
    live.restore_state()
    await live.process(store(sessions, registry, [gateway.smoke(True)]))
    await live.effects.run_once()
    await live.checkpoint()
    # The alert is dealt with and deleted; a replay of the alarm would raise it again.
    with sessions.begin() as db:
        db.execute(delete(Alert))
    again = await restart(sessions, registry)
    assert again.counts["replayed"] == 0 and again.counts["already_evaluated"] == 0
    assert smoke_alerts(sessions) == []
    # Live batches at or below the watermark (a redelivered hook batch) are skipped too.
    stored = store(sessions, registry, [gateway.smoke(False)])
    await again.process(stored)
    await again.process(stored)
    assert again.counts["already_evaluated"] == 1


@pytest.mark.anyio
async def test_a_replayed_alarm_older_than_stale_after_only_rebuilds_state(
    sessions: sessionmaker[Session],
) -> None:
    registry = import_site(sessions)
    gateway = Gateway()
    first = make_runner(sessions, registry)
    first.restore_state()
    stale = first.effects.settings.stale_after_s
    store(
        sessions, registry, [gateway.smoke(True, datetime.now(UTC) - timedelta(seconds=stale + 60))]
    )
    second = await restart(sessions, registry)
    assert second.counts["replayed"] == 1 and second.counts["replayed_stale"] == 1
    assert smoke_alerts(sessions) == []


@pytest.mark.anyio
async def test_replay_is_bounded_by_rows(sessions: sessionmaker[Session]) -> None:
    registry = import_site(sessions)
    gateway = Gateway()
    first = make_runner(sessions, registry)
    first.restore_state()
    store(sessions, registry, [gateway.smoke(True)] + [gateway.smoke(False) for _ in range(4)])
    runner = make_runner(sessions, registry)
    runner.restore_state()
    await StoredFeed(runner, FeedConfig(replay_max_rows=2)).catch_up()
    await runner.effects.run_once()
    assert runner.counts["replayed"] == 2 and runner.counts["replay_skipped"] == 3
    assert smoke_alerts(sessions) == []  # the alarm was in the part left out


@pytest.mark.anyio
async def test_a_new_shard_starts_where_the_old_set_stopped(
    sessions: sessionmaker[Session],
) -> None:
    registry = import_site(sessions)
    old = make_runner(sessions, registry)
    old.restore_state()
    await old.checkpoint()
    # Re-sharding 1 → 2: the old process stops; an alarm is stored before the new set starts.
    store(sessions, registry, [Gateway().smoke(True)])
    new = [make_runner(sessions, registry, (i, 2)) for i in range(2)]
    for runner in new:
        runner.restore_state()
        assert runner.watermark == old.watermark
        await StoredFeed(runner, FeedConfig()).catch_up()
        await runner.effects.run_once()
    owner = shard_of(SITE, 2)
    assert [r.counts["replayed"] for r in new] == [int(i == owner) for i in range(2)]
    assert smoke_alerts(sessions) == [(SMOKE, False)]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.anyio
async def test_the_feed_puts_each_gateway_in_order_and_waits_for_a_missing_id(
    sessions: sessionmaker[Session],
) -> None:
    registry = import_site(sessions)
    gateway = Gateway()
    runner = make_runner(sessions, registry)
    runner.restore_state()
    clock = Clock()
    feed = StoredFeed(runner, FeedConfig(settle_s=2.0, hold_s=0.5), clock=clock)
    await feed.catch_up()

    async def step() -> None:
        await feed._step(2.0, 0.5, replay=False)
        await runner.effects.run_once()

    ts = datetime.now(UTC)
    first = store(sessions, registry, [gateway.smoke(False, ts, seq=0)])
    await step()
    assert runner.watermark == first[0].row_id
    # Another ingest process commits seq 2 (alarm) before seq 1 (all clear, made earlier).
    later = store(sessions, registry, [gateway.smoke(True, ts + timedelta(seconds=2), seq=2)])
    await step()
    assert runner.watermark == first[0].row_id  # seq 2 waits for seq 1
    earlier = store(sessions, registry, [gateway.smoke(False, ts + timedelta(seconds=1), seq=1)])
    assert earlier[0].row_id is not None and later[0].row_id is not None
    assert earlier[0].row_id > later[0].row_id
    await step()
    # seq 1 (clear) was evaluated before seq 2 (alarm): the alarm stands.
    assert smoke_alerts(sessions) == [(SMOKE, False)]
    assert runner.watermark == earlier[0].row_id and runner.counts["late"] == 0

    # seq 3 never comes in time: seq 4 waits hold_s, then goes; seq 3 is then late.
    four = store(sessions, registry, [gateway.smoke(True, seq=4)])
    await step()
    assert runner.watermark == earlier[0].row_id
    clock.now += 0.6
    await step()
    assert runner.watermark == four[0].row_id
    store(sessions, registry, [gateway.smoke(True, seq=3)])
    await step()
    assert runner.counts["late"] == 1

    # A missing id: stored, then its row deleted (as if still in an open transaction).
    gone = store(sessions, registry, [gateway.smoke(True, seq=5)])
    after = store(sessions, registry, [gateway.smoke(True, seq=6)])
    assert gone[0].row_id is not None
    with sessions.begin() as db:
        db.execute(delete(StoredEnvelope).where(StoredEnvelope.id == gone[0].row_id))
    await step()
    clock.now += 1.0
    await step()
    assert runner.watermark == gone[0].row_id - 1  # waiting for the hole to settle
    clock.now += 1.5
    await step()
    assert runner.watermark == after[0].row_id and runner.counts["skipped_ids"] == 1
    assert smoke_alerts(sessions) == [(SMOKE, False)]

    # The readings floor moved forward, but stays below the readings of the next message.
    assert runner.floor() > 0
    following = store(sessions, registry, [gateway.smoke(True, seq=7)])
    message = following[0].message
    assert isinstance(message, Telemetry)
    with sessions() as db:
        q = select(func.min(ReadingRow.id)).where(ReadingRow.message == following[0].row_id)
        assert runner.floor() < int(db.scalar(q) or 0)

    # A boot seen for the first time waits for its seq 0 as well: each boot counts from 0, and
    # another ingest process may still hold the first message.
    await step()
    assert runner.watermark == following[0].row_id
    fresh = Gateway()
    second = store(sessions, registry, [fresh.smoke(True, seq=1)])
    await step()
    assert runner.watermark == following[0].row_id
    zero = store(sessions, registry, [fresh.smoke(False, seq=0)])
    assert second[0].row_id is not None and zero[0].row_id is not None
    await step()
    assert runner.watermark == zero[0].row_id and runner.counts["late"] == 1

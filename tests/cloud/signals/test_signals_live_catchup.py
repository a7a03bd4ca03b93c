"""The follower of alert changes made elsewhere replays no history to the screens: what was
written before it started is not published, and after a listener (re)connects at most
``CATCH_UP`` rows are (SQLite and PostgreSQL; the writer is a real second process)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts.tables import Alert
from cloud.notify import follow
from cloud.notify.hub import Hub
from tests.cloud.signals.test_signals_live import SITE, rules_process


def last_alert(engine: Engine) -> int:
    with Session(engine) as db:
        return int(db.scalar(select(func.max(Alert.id))) or 0)


@pytest.mark.anyio
async def test_what_was_written_before_the_follower_started_is_not_replayed(
    engine: Engine,
) -> None:
    await asyncio.to_thread(rules_process, engine, "raise", SITE)  # history
    sessions = sessionmaker(engine, expire_on_commit=False)
    hub = Hub()
    share = follow.install(sessions, hub)
    async with hub.subscribe() as sub:
        following = asyncio.create_task(share.follow(sessions))
        try:
            await asyncio.sleep(2.0)  # connected (one "changed, not known what"), polled
            assert sub.queue.empty() and share.heard == 0
            alert_id = await asyncio.to_thread(last_alert, engine)
            await asyncio.to_thread(rules_process, engine, "ack", SITE, str(alert_id))
            event = await asyncio.wait_for(sub.get(), 30)
            for _ in range(100):  # published from the follower's thread, counted right after
                if share.heard:
                    break
                await asyncio.sleep(0.05)
        finally:
            following.cancel()
            await asyncio.gather(following, return_exceptions=True)
    assert (event["change"], event["alert"]["id"]) == ("acknowledge", alert_id)
    assert event["alert"]["status"] == "acknowledged"
    assert sub.queue.empty() and share.heard == 1


def test_a_catch_up_publishes_a_bounded_number_of_rows(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    rules_process(engine, "raise", SITE)
    rules_process(engine, "ack", SITE, str(last_alert(engine)))  # two lines since the mark (0)
    sessions = sessionmaker(engine, expire_on_commit=False)
    unknown: list[tuple[str, str | None]] = [(follow.ALERTS, None)]  # as after a reconnect

    control = follow.LiveShare(Hub())
    control._catch_up(sessions, unknown)
    assert control.heard == 2 and control.dropped == 0

    monkeypatch.setattr(follow, "CATCH_UP", 1)
    bounded = follow.LiveShare(Hub())
    bounded._catch_up(sessions, unknown)
    assert bounded.heard == 0 and bounded.dropped == 1
    bounded._catch_up(sessions, unknown)  # the mark moved past them: not later either
    assert bounded.heard == 0 and bounded.dropped == 1

"""An alert that only repeats (count and last seen bumped, no audit line) in another process
reaches this app's stream as one ``repeated`` event with the new count; a reraise is not told
twice; this app's own repeats go out once (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.engine import Engine

from cloud import signals
from cloud.alerts import service
from cloud.alerts.states import Severity
from cloud.auth.deps import Role
from cloud.notify.follow import REPEATS, LiveShare
from tests.cloud.api.conftest import Cloud, make_cloud
from tests.cloud.signals.conftest import END, heard_on, until_end, wait_heard
from tests.cloud.signals.test_signals_live import SITE, rules_process

__all__ = ["make_cloud"]  # the real app on a database of the test's own


def changes(events: list[dict[str, Any]]) -> list[tuple[str, int, bool]]:
    return [(e["change"], e["alert"]["count"], e["alert"]["cleared"]) for e in events]


def test_repeats_in_another_process_reach_the_stream_once(
    make_cloud: Callable[..., Cloud],
) -> None:
    cloud = make_cloud(role="ingest")  # the screens' process; the rules run elsewhere
    share: LiveShare = cloud.app.state.live_share
    engine: Engine = cloud.app.state.engine
    with cloud.client.websocket_connect(
        "/api/stream?topics=alert", headers=cloud.auth(Role.MANAGER)
    ) as ws:
        assert ws.receive_json()["type"] == "hello"

        heard = partial(heard_on, share, cloud.services.hub, ws)

        rules_process(engine, "raise", SITE)
        assert changes(heard(1)) == [("created", 1, False)]
        rules_process(engine, "repeat", SITE)
        assert changes(heard(2)) == [("repeated", 2, False)]
        rules_process(engine, "repeat", SITE)
        assert changes(heard(3)) == [("repeated", 3, False)]

        # cleared, then raised again: its "reraised" line tells it; no "repeated" besides.
        rules_process(engine, "reraise", SITE)
        wait_heard(share, 5)
        time.sleep(1.5)  # several SQLite polls: a "repeated" would be here by now
        cloud.services.hub.publish(END)
        got = until_end(ws)
        assert [c for c, _, _ in changes(got)] == ["cleared", "reraised"]
        assert changes(got)[-1] == ("reraised", 4, False)

        # This app's own repeat: published once (by whoever raised it here), not by its signal.
        heard_before = share.heard
        now = datetime.now(UTC)
        spec = service.RaiseSpec(site=SITE, rule_id="smoke", subject="b1-smoke",
                                 severity=Severity.CRITICAL, title_en="Smoke", title_zh="烟雾",
                                 ts=now)  # fmt: skip
        with cloud.services.sessions.begin() as db:
            assert service.raise_alert(db, spec, now).outcome == "repeated"
        time.sleep(1.5)
        cloud.services.hub.publish(END)
        assert until_end(ws) == []  # nobody published it here: the raiser does, not the signal
        assert share.heard == heard_before

        # Another process repeats it once more: the count it carries is the new one.
        rules_process(engine, "repeat", SITE)
        assert changes(heard(heard_before + 1)) == [("repeated", 6, False)]


def test_a_repeat_is_announced_and_a_change_with_its_own_line_is_not(
    make_cloud: Callable[..., Cloud],
) -> None:
    cloud = make_cloud(role="ingest")
    engine: Engine = cloud.app.state.engine
    announced: list[list[int]] = []
    stop = signals.subscribe(engine, REPEATS, lambda p: announced.append(json.loads(p)))
    now = datetime.now(UTC)
    spec = service.RaiseSpec(site=SITE, rule_id="gas", subject="b2-gas", severity=Severity.MAJOR,
                             title_en="Gas", title_zh="燃气", ts=now)  # fmt: skip

    def raised() -> str:
        with cloud.services.sessions.begin() as db:
            return service.raise_alert(db, spec, now).outcome

    try:
        assert raised() == "created"
        assert announced == []  # its "raised" line tells the other processes
        assert raised() == "repeated"
        assert len(announced) == 1 and len(announced[0]) == 1
        alert_id = announced[0][0]
        with cloud.services.sessions.begin() as db:
            assert service.clear_alert(db, SITE, "gas", "b2-gas", now, now) is not None
        assert raised() == "reraised"  # count bumped too, but its "reraised" line tells it
        assert announced == [[alert_id]]
        with cloud.services.sessions() as db:  # a repeat rolled back: nothing
            service.raise_alert(db, spec, now)
            db.rollback()
        assert raised() == "repeated"
        assert announced == [[alert_id], [alert_id]]
    finally:
        stop()

"""The rule set each gateway is sent: its version, and two cloud processes recording it at once."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cloud.commands.publisher import Publisher
from cloud.registry.tables import Gateway, Site
from cloud.rules.configs import ConfigPusher
from cloud.rules.tables import GatewayConfigRow
from protocols.rules.language import RuleSet
from protocols.rules.loader import default_pack

# config_for records and returns the config; it never publishes.
NO_PUBLISHER = cast(Publisher, None)


def _site(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as db:
        db.add(Site(id="s1"))
        db.flush()
        db.add(Gateway(site="s1", id="gw1", approval="approved"))
        db.add(Gateway(site="s1", id="gw2", approval="pending"))


def test_version_grows_only_when_the_edge_rules_change(sessions: sessionmaker[Session]) -> None:
    _site(sessions)
    pack = default_pack()
    first = ConfigPusher(pack, sessions, NO_PUBLISHER).config_for("s1", "gw1")
    assert first is not None and first.version == 1
    assert len(first.rules) == len(pack.for_edge()) > 0
    # A restart with the same rules republishes the same version.
    again = ConfigPusher(pack, sessions, NO_PUBLISHER).config_for("s1", "gw1")
    assert again is not None and again.version == 1
    fewer = RuleSet(rules=pack.for_edge().rules[1:])
    changed = ConfigPusher(fewer, sessions, NO_PUBLISHER).config_for("s1", "gw1")
    assert changed is not None and changed.version == 2
    assert len(changed.rules) == len(first.rules) - 1
    # Unknown and not-yet-approved gateways get nothing.
    assert ConfigPusher(pack, sessions, NO_PUBLISHER).config_for("s1", "gw2") is None
    assert ConfigPusher(pack, sessions, NO_PUBLISHER).config_for("s1", "nope") is None


def test_another_process_records_the_first_version_at_the_same_moment(
    pg_engine: Engine,
) -> None:
    """PostgreSQL: `--role rules` and `--role ingest` start together and both record gw1's
    first version; the one that loses the insert reads the winner's row (a CI run once saw the
    loser crash with a unique violation)."""
    sessions = sessionmaker(pg_engine, expire_on_commit=False)
    _site(sessions)
    pusher = ConfigPusher(default_pack(), sessions, NO_PUBLISHER)
    raced: list[bool] = []

    def other_process_first(db: Session, *_: Any) -> None:
        if raced:
            return
        raced.append(True)
        with pg_engine.begin() as other:  # its own connection, committed before our insert
            other.execute(
                insert(GatewayConfigRow).values(
                    site="s1", gateway="gw1", version=1, fingerprint=pusher.fingerprint
                )
            )

    event.listen(Session, "before_flush", other_process_first)
    try:
        config = pusher.config_for("s1", "gw1")
    finally:
        event.remove(Session, "before_flush", other_process_first)
    assert raced == [True]
    assert config is not None and config.version == 1
    with sessions() as db:
        row = db.get(GatewayConfigRow, ("s1", "gw1"))
        assert row is not None and row.version == 1 and row.published_at is not None

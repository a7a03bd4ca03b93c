"""The rules runner without a broker: ordering, shards, pending and duplicate data, state
hand-over, and rule packs from files. Alerts land in a real database."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service
from cloud.ingest.models import StoredMessage
from cloud.notify.dispatcher import Notifier
from cloud.notify.hub import Hub
from cloud.registry.service import Registry
from cloud.registry.sitefile import SiteFile
from cloud.rules.effects import Effects
from cloud.rules.lookup import RegistryLookup, tags_of
from cloud.rules.packs import load_packs
from cloud.rules.runner import RulesRunner, shard_of
from cloud.settings import Settings
from protocols.codec import new_id
from protocols.kinds import DeviceKind
from protocols.messages import Reading, Telemetry
from protocols.rules import RuleError, default_pack, parse_rules
from protocols.topics import Channel, Topic

RULES = """
- id: hot
  title: {zh: 过热, en: Too hot}
  severity: major
  select: {kind: temperature, metric: temperature}
  when: {type: threshold, op: ">=", value: 50, clear: 40}
- id: quiet
  title: {zh: 无数据, en: Silent}
  severity: minor
  select: {kind: temperature}
  when: {type: no_data, for: 30s}
"""


def lookup(site: str, device: str) -> tuple[DeviceKind, str, str] | None:
    return (DeviceKind.TEMPERATURE, "z1", "b1") if device.startswith("t") else None


def stored(
    site: str, device: str, value: float, ts: datetime, *, pending: bool = False,
    duplicate: bool = False, historical: bool = False,
) -> StoredMessage:  # fmt: skip
    return StoredMessage(
        Topic(site, "gw1", Channel.TELEMETRY),
        Telemetry(
            msg_id=new_id(),
            boot_id=new_id(),
            seq=0,
            ts=ts,
            historical=historical,
            readings=(Reading(device=device, metric="temperature", value=value, ts=ts),),
        ),
        duplicate=duplicate,
        pending=pending,
    )


def make_runner(sessions: sessionmaker[Session], *, shard: tuple[int, int] = (0, 1)) -> RulesRunner:
    settings = Settings(db_url="sqlite://", mqtt_enabled=False)
    hub = Hub()
    notifier = Notifier(settings.channels, sessions, hub)
    effects = Effects(settings, sessions, notifier, hub, None)
    return RulesRunner(
        parse_rules(RULES, "test.yaml"), sessions, lookup, effects, hub,
        shard_index=shard[0], shard_count=shard[1],
    )  # fmt: skip


async def feed(runner: RulesRunner, batch: Sequence[StoredMessage]) -> None:
    await runner.process(batch)
    await runner.effects.run_once()


def alerts(sessions: sessionmaker[Session]) -> list[tuple[str, str, bool]]:
    with sessions() as db:
        found = service.list_alerts(db, service.AlertFilter())
    return sorted((a.rule_id, a.subject, a.cleared) for a in found)


def test_shard_of_is_stable_and_spreads_sites() -> None:
    # CRC-32 of the site id: the same in every process, restart and Python version
    assert (shard_of("demo", 4), shard_of("site-a", 7)) == (0, 2)
    spread = {shard_of(f"site{i}", 4) for i in range(100)}
    assert spread == {0, 1, 2, 3}


@pytest.mark.anyio
async def test_raise_then_clear_in_order_and_pending_or_duplicate_data_is_ignored(
    sessions: sessionmaker[Session],
) -> None:
    runner = make_runner(sessions)
    now = datetime.now(UTC)
    await feed(
        runner,
        [
            stored("s1", "t1", 55, now, pending=True),  # not approved: no rules
            stored("s1", "t2", 55, now, duplicate=True),  # seen before: not again
            stored("s1", "t3", 55, now),
            stored("s1", "t3", 35, now + timedelta(seconds=1)),
        ],
    )
    assert alerts(sessions) == [("hot", "t3", True)]
    assert runner.counts["pending"] == 1 and runner.counts["duplicate"] == 1


@pytest.mark.anyio
async def test_a_shard_evaluates_only_its_own_sites(sessions: sessionmaker[Session]) -> None:
    sites = [f"site{i}" for i in range(8)]
    mine = [s for s in sites if shard_of(s, 2) == 1]
    runner = make_runner(sessions, shard=(1, 2))
    now = datetime.now(UTC)
    await feed(runner, [stored(s, "t1", 60, now) for s in sites])
    with sessions() as db:
        raised = {a.site for a in service.list_alerts(db, service.AlertFilter())}
    assert raised == set(mine) and 0 < len(mine) < len(sites)
    assert runner.counts["other_shard"] == len(sites) - len(mine)


@pytest.mark.anyio
async def test_historical_replay_never_raises_but_live_data_does(
    sessions: sessionmaker[Session],
) -> None:
    runner = make_runner(sessions)
    now = datetime.now(UTC)
    stale = runner.effects.settings.stale_after_s
    old = now - timedelta(seconds=stale + 60)
    await feed(runner, [stored("s1", "t1", 70, old, historical=True)])
    assert alerts(sessions) == []
    await feed(runner, [stored("s1", "t9", 70, now)])
    assert alerts(sessions) == [("hot", "t9", False)]


@pytest.mark.anyio
async def test_replay_after_a_short_outage_still_raises(
    sessions: sessionmaker[Session],
) -> None:
    """A reading held back by a brief link loss is flagged historical by the gateway, but it
    is not stale: an alarm 30 s late must still reach the board."""
    runner = make_runner(sessions)
    now = datetime.now(UTC)
    await feed(runner, [stored("s1", "t2", 70, now - timedelta(seconds=30), historical=True)])
    assert alerts(sessions) == [("hot", "t2", False)]
    assert runner.counts["replayed_fresh"] == 1


@pytest.mark.anyio
async def test_timers_survive_a_restart_through_saved_state(
    sessions: sessionmaker[Session],
) -> None:
    now = datetime.now(UTC)
    first = make_runner(sessions)
    await feed(first, [stored("s1", "t1", 20, now)])
    first.save_state()
    second = make_runner(sessions)
    assert second.restore_state()
    # The resumed engine judges silence from its first tick (it heard nothing while down)...
    await second.tick(now + timedelta(seconds=31))
    assert await second.effects.run_once() == 0
    await second.tick(now + timedelta(seconds=62))
    assert await second.effects.run_once() == 1
    assert alerts(sessions) == [("quiet", "t1", False)]
    # ...and without the saved state the device would be forgotten: its silence unnoticed.
    fresh = make_runner(sessions)
    for seconds in (31, 62, 93):
        await fresh.tick(now + timedelta(seconds=seconds))
    assert await fresh.effects.run_once() == 0


def test_rule_files_join_the_default_pack_and_a_bad_one_names_file_and_rule(
    tmp_path: Path,
) -> None:
    good = tmp_path / "extra.yaml"
    good.write_text(RULES, encoding="utf-8")
    rules = load_packs([good])
    assert {"hot", "quiet", "smoke-alarm"} <= set(rules.ids)
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES.replace("value: 50, clear: 40", "value: 50, clear: 60"), "utf-8")
    with pytest.raises(RuleError) as err:
        load_packs([bad])
    assert "bad.yaml" in str(err.value) and "hot" in str(err.value)
    clash = tmp_path / "clash.yaml"
    clash.write_text(RULES.replace("id: hot", "id: smoke-alarm"), "utf-8")
    with pytest.raises(RuleError, match="duplicate"):
        load_packs([clash])


def test_tags_come_from_registry_attrs() -> None:
    assert tags_of({"living_alone": True, "floor": 3, "tags": ["evacuation", "Bad Tag"]}) == {
        "living_alone",
        "evacuation",
    }
    assert tags_of({"living_alone": False}) == frozenset() and tags_of(None) == frozenset()


@pytest.mark.anyio
async def test_living_alone_silence_uses_registry_tags(sessions: sessionmaker[Session]) -> None:
    engine = sessions.kw["bind"]
    registry = Registry(engine)
    with sessions.begin() as db:
        registry.import_site(
            db,
            SiteFile.model_validate(
                {
                    "site": "s1",
                    "zones": [{"id": "z1"}],
                    "gateways": [
                        {
                            "id": "gw1",
                            "devices": [
                                {"id": "pir-alone", "kind": "pir", "zone": "z1",
                                 "attrs": {"living_alone": True}},
                                {"id": "pir-family", "kind": "pir", "zone": "z1"},
                            ],
                        }
                    ],
                }
            ),
        )  # fmt: skip
    settings = Settings(db_url="sqlite://", mqtt_enabled=False)
    hub = Hub()
    effects = Effects(settings, sessions, Notifier(settings.channels, sessions, hub), hub, None)
    lookup = RegistryLookup(registry, sessions)
    runner = RulesRunner(default_pack(), sessions, lookup, effects, hub)
    seen = datetime.now(UTC) - timedelta(hours=24, minutes=1)
    batch = [
        StoredMessage(
            Topic("s1", "gw1", Channel.TELEMETRY),
            Telemetry(
                msg_id=new_id(), boot_id=new_id(), seq=i, ts=seen,
                readings=(Reading(device=d, metric="motion", value=True, ts=seen),),
            ),
        )
        for i, d in enumerate(["pir-alone", "pir-family"])
    ]  # fmt: skip
    await runner.process(batch)
    await runner.tick(datetime.now(UTC))
    await effects.run_once()
    with sessions() as db:
        found = service.list_alerts(db, service.AlertFilter(rule_id="living-alone-no-activity"))
    assert [a.subject for a in found] == ["pir-alone"]

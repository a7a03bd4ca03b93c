"""Cloud commands over a real broker: acks, expiry, duplicates, unknown names, plug-in handlers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.actuators import SimulatedOutput
from edge.agent import EdgeAgent
from edge.errors import CommandFailed
from edge.testing import Subscriber, edge_config, publish_downlink, running, until
from linli.services import Mosquitto
from protocols.codec import encode, new_id
from protocols.messages import AckStatus, AttrValue, Command, CommandAck, GatewayConfig
from protocols.topics import Channel

pytestmark = pytest.mark.anyio


def command(
    name: str,
    target: str | None = None,
    *,
    ttl: float = 60,
    params: dict[str, AttrValue] | None = None,
    **more: AttrValue,
) -> Command:
    now = datetime.now(UTC)
    return Command(
        cmd_id=new_id(),
        name=name,
        target=target,
        params={**(params or {}), **more},
        issued_at=now - timedelta(seconds=1),
        expires_at=now + timedelta(seconds=ttl),
    )


def acks(sub: Subscriber) -> dict[str, list[CommandAck]]:
    out: dict[str, list[CommandAck]] = {}
    for d in sub.snapshot(Channel.ACK):
        assert isinstance(d.message, CommandAck)
        out.setdefault(d.message.cmd_id, []).append(d.message)
    return out


async def test_round_trip_expired_duplicate_and_unknown(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(mosquitto, site)
    config = edge_config(
        tmp_path, mosquitto, site, actuators={"doors": [{"id": "door-1", "open_seconds": 0.3}]}
    )
    agent = EdgeAgent(config)
    door_output = agent.actuators.doors["door-1"].output
    siren_output = agent.actuators.siren.output if agent.actuators.siren else None
    assert isinstance(door_output, SimulatedOutput) and isinstance(siren_output, SimulatedOutput)
    async with running(agent):
        await agent.uplink.wait_subscribed()
        open_door = command("door.open", "door-1")
        expired = command("siren.on", ttl=-0.5)
        unknown = command("gallery.sync")
        bad_target = command("door.open", "door-9")
        for cmd in (open_door, expired, unknown, bad_target, open_door):  # open_door twice
            publish_downlink(mosquitto, site, "gw1", Channel.CMD, encode(cmd))
        await sub.await_for(lambda _: len(acks(sub)) == 4 and len(acks(sub)[open_door.cmd_id]) == 2)
        got = acks(sub)
        first, second = got[open_door.cmd_id]
        assert first.status is AckStatus.OK and first.result["door"] == "door-1"
        assert second.status is AckStatus.DUPLICATE and second.result == first.result
        (exp,) = got[expired.cmd_id]
        assert exp.status is AckStatus.REFUSED and exp.reason and "expired" in exp.reason
        (unk,) = got[unknown.cmd_id]
        assert unk.status is AckStatus.REFUSED and "unknown command" in (unk.reason or "")
        (bad,) = got[bad_target.cmd_id]
        assert bad.status is AckStatus.REFUSED and "door-9" in (bad.reason or "")
        # executed once: one release (and its relock after open_seconds), the siren untouched
        await sub.await_for(lambda _: len(door_output.history) >= 2, 5)
        assert [on for _, on in door_output.history] == [True, False]
        assert siren_output.history == []
        assert all(a.boot_id == agent.boot_id for acks_ in got.values() for a in acks_)


async def test_duplicate_detection_survives_a_restart(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(mosquitto, site)
    config = edge_config(tmp_path, mosquitto, site)
    siren_on = command("siren.on")
    for boot in range(2):  # the same command to two boots of the agent with the same state dir
        agent = EdgeAgent(config)
        async with running(agent):
            await agent.uplink.wait_subscribed()
            publish_downlink(mosquitto, site, "gw1", Channel.CMD, encode(siren_on))

            def acked(_: object, n: int = boot + 1) -> bool:
                return len(acks(sub).get(siren_on.cmd_id, [])) >= n

            await sub.await_for(acked)
            output = agent.actuators.siren.output if agent.actuators.siren else None
            assert isinstance(output, SimulatedOutput)
            executed = [on for _, on in output.history]
        assert executed == ([True] if boot == 0 else [])
    assert [a.status for a in acks(sub)[siren_on.cmd_id]] == [AckStatus.OK, AckStatus.DUPLICATE]


async def test_plugged_in_handler_and_its_failure(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(mosquitto, site)
    agent = EdgeAgent(edge_config(tmp_path, mosquitto, site))
    synced: list[Command] = []

    async def gallery_sync(cmd: Command) -> dict[str, AttrValue]:
        if cmd.params.get("version") is None:
            raise CommandFailed("no version given")
        synced.append(cmd)
        return {"gallery_version": cmd.params["version"]}

    agent.commands.register("gallery.sync", gallery_sync)
    with pytest.raises(ValueError, match="registered already"):
        agent.commands.register("gallery.sync", gallery_sync)
    good, bad = command("gallery.sync", version=7.0), command("gallery.sync")
    async with running(agent):
        await agent.uplink.wait_subscribed()
        publish_downlink(mosquitto, site, "gw1", Channel.CMD, encode(good))
        publish_downlink(mosquitto, site, "gw1", Channel.CMD, encode(bad))
        publish_downlink(mosquitto, site, "gw1", Channel.CMD, b'{"not": "a command"}')
        await sub.await_for(lambda _: len(acks(sub)) == 2)
        await sub.await_for(lambda _: agent.rejected == 1, 5)
    got = acks(sub)
    assert got[good.cmd_id][0].status is AckStatus.OK
    assert got[good.cmd_id][0].result == {"gallery_version": 7.0}
    assert got[bad.cmd_id][0].status is AckStatus.FAILED
    assert got[bad.cmd_id][0].reason == "no version given"
    assert [c.cmd_id for c in synced] == [good.cmd_id]


async def test_config_update_changes_the_report_policy(
    tmp_path: Path,
    mosquitto: Mosquitto,
    site: str,
    subscriber_for: Callable[..., Subscriber],
) -> None:
    sub = subscriber_for(mosquitto, site)
    agent = EdgeAgent(edge_config(tmp_path, mosquitto, site))
    update = command("config.update", params={"report.period": 42.0, "health.interval": 10.0})
    typo = command("config.update", params={"report.perod": 1.0})
    bad = command("config.update", params={"report.mode": "sometimes", "health.interval": 99.0})
    async with running(agent):
        await agent.uplink.wait_subscribed()
        for cmd in (update, typo, bad):
            publish_downlink(mosquitto, site, "gw1", Channel.CMD, encode(cmd))
        await sub.await_for(lambda _: len(acks(sub)) == 3)
    got = acks(sub)
    assert got[update.cmd_id][0].status is AckStatus.OK
    assert agent.reporter.default.period == 42.0 and agent.health_interval == 10.0
    assert got[typo.cmd_id][0].status is AckStatus.REFUSED
    assert "report.perod" in (got[typo.cmd_id][0].reason or "")
    assert got[bad.cmd_id][0].status is AckStatus.REFUSED
    assert "report.mode" in (got[bad.cmd_id][0].reason or "")
    assert agent.reporter.default.mode.value == "change_or_period", "refused: nothing changes"
    assert agent.health_interval == 10.0


async def test_retained_config_settings_apply_by_version(
    tmp_path: Path, mosquitto: Mosquitto, site: str
) -> None:
    now = datetime.now(UTC)
    v3 = GatewayConfig(version=3, issued_at=now, settings={"report.period": 7.0})
    publish_downlink(mosquitto, site, "gw1", Channel.CONFIG, encode(v3), retain=True)
    agent = EdgeAgent(edge_config(tmp_path, mosquitto, site))
    async with running(agent):
        await until(lambda: agent.gateway_config is not None, 10, "config applied")
        assert agent.reporter.default.period == 7.0
        v2 = GatewayConfig(version=2, issued_at=now, settings={"report.period": 1.0})
        publish_downlink(mosquitto, site, "gw1", Channel.CONFIG, encode(v2), retain=True)
        v4 = GatewayConfig(version=4, issued_at=now, settings={"report.deadband": 0.5})
        publish_downlink(mosquitto, site, "gw1", Channel.CONFIG, encode(v4), retain=True)
        await until(lambda: agent.gateway_config is not None and agent.gateway_config.version == 4)
    assert agent.reporter.default.period == 7.0, "v2 came late and was ignored"
    assert agent.reporter.default.deadband == 0.5

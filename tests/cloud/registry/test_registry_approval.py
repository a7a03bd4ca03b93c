"""Unknown gateways and devices are held for approval: stored, flagged, invisible to rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest.buffer import Delivery
from cloud.ingest.store import BatchWriter
from cloud.registry import Approval, DeviceLocation, Registry, SiteFile, infer_kind
from cloud.registry.tables import Device, Gateway, Site
from cloud.storage.tables import Reading, Series
from protocols.codec import channel_of, encode, new_id
from protocols.kinds import DeviceKind
from protocols.messages import GatewayState, GatewayStatus, Model, Telemetry
from protocols.messages import Reading as WireReading
from protocols.topics import topic

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
BOOT = "boot-0000000001"


def deliver(site: str, gateway: str, *messages: Model) -> list[Delivery]:
    return [
        Delivery(topic(site, gateway, channel_of(m)), encode(m), i, 1, datetime.now(UTC))
        for i, m in enumerate(messages, 1)
    ]


def telemetry(seq: int, **values: float) -> Telemetry:
    ts = T0 + timedelta(seconds=seq)
    return Telemetry(
        msg_id=new_id(),
        boot_id=BOOT,
        seq=seq,
        ts=ts,
        readings=tuple(
            WireReading(device=d.replace("_", "-"), metric=m, value=v, ts=ts)
            for d, (m, v) in ((k, _metric(k, v)) for k, v in values.items())
        ),
    )


def _metric(device: str, value: float) -> tuple[str, float]:
    return ("smoke" if device.startswith("smoke") else "temperature"), value


def site_file(site: str, auto: bool = False) -> SiteFile:
    return SiteFile.model_validate(
        {
            "site": site,
            "auto_approve": auto,
            "buildings": [{"id": "b1", "floors": [{"id": "b1-f1", "level": 1}]}],
            "zones": [{"id": "z1", "building": "b1", "floor": "b1-f1"}],
            "gateways": [
                {
                    "id": "gw1",
                    "devices": [
                        {"id": "smoke-1", "kind": "smoke", "building": "b1", "zone": "z1"},
                        {
                            "id": "pir-1",
                            "kind": "pir",
                            "zone": "z1",
                            "attrs": {"living_alone": True, "vendor": "acme", "spare": False},
                        },
                    ],
                }
            ],
        }
    )


def test_site_import_approves_and_lookup_answers(engine: Engine, site: str) -> None:
    registry = Registry(engine)
    with Session(engine) as s, s.begin():
        registry.import_site(s, site_file(site))
    with Session(engine) as s, s.begin():
        registry.import_site(s, site_file(site))  # idempotent
    assert registry.lookup(site, "smoke-1") == DeviceLocation(DeviceKind.SMOKE, "z1", "b1")
    kind, zone, building, tags = registry.lookup(site, "smoke-1") or (None, None, None, None)
    assert (kind, zone, building, tags) == (DeviceKind.SMOKE, "z1", "b1", frozenset())
    elder = registry.lookup(site, "pir-1")
    assert elder is not None and elder.tags == {"living_alone"}  # from attrs that are true
    assert registry.lookup(site, "nobody") is None
    assert Registry(engine).lookup(site, "smoke-1") is not None  # persisted, not only cached


def test_unknown_device_stored_flagged_then_approved(engine: Engine, site: str) -> None:
    registry = Registry(engine)
    with Session(engine) as s, s.begin():
        registry.import_site(s, site_file(site))
    writer = BatchWriter(engine, registry)
    first = writer.write(deliver(site, "gw1", telemetry(0, smoke_1=0, temp_9=21.5)))
    [stored] = first.stored
    # Evaluated for smoke-1; temp-9 is unknown: flagged, and lookup hides it from the rules.
    assert (stored.pending, stored.pending_devices) == (False, frozenset({"temp-9"}))
    assert registry.lookup(site, "temp-9") is None
    [alone] = writer.write(deliver(site, "gw1", telemetry(5, temp_9=20.0))).stored
    assert alone.pending  # nothing approved in it
    with Session(engine) as s:
        of_series = select(Series.device, Reading.pending).join(Series, Series.id == Reading.series)
        flags = {device: pending for device, pending in s.execute(of_series)}
        assert flags == {"smoke-1": False, "temp-9": True}  # stored, never lost, but flagged
        smoke = s.get(Device, (site, "smoke-1"))
        assert smoke is not None and smoke.last_seen == T0  # liveness input, set by ingest
        pending_gws, pending_devices = registry.pending(s, site)
        assert ([g.id for g in pending_gws], [d.id for d in pending_devices]) == ([], ["temp-9"])

    with Session(engine) as s, s.begin():
        registry.set_device_approval(s, site, "temp-9", Approval.APPROVED, DeviceKind.TEMPERATURE)
    assert registry.lookup(site, "temp-9") == DeviceLocation(DeviceKind.TEMPERATURE, None, None)
    [later] = writer.write(deliver(site, "gw1", telemetry(1, temp_9=22.0))).stored
    assert (later.pending, later.pending_devices) == (False, frozenset())


def test_gateway_health_readings_follow_the_gateway(engine: Engine, site: str) -> None:
    registry = Registry(engine)
    writer = BatchWriter(engine, registry)
    health = Telemetry(
        msg_id=new_id(),
        boot_id=BOOT,
        seq=0,
        ts=T0,
        readings=(WireReading(device="gw1", metric="outbox_depth", value=0, ts=T0),),
    )
    [first] = writer.write(deliver(site, "gw1", health)).stored
    assert first.pending and registry.lookup(site, "gw1") is None
    with Session(engine) as s, s.begin():
        registry.import_site(s, site_file(site))  # declares gw1: approves it and its readings
    assert registry.lookup(site, "gw1") == DeviceLocation(DeviceKind.GATEWAY, None, None)
    [later] = writer.write(
        deliver(site, "gw1", health.model_copy(update={"msg_id": new_id()}))
    ).stored
    assert not later.pending


def test_unknown_gateway_is_pending_and_flags_everything(engine: Engine, site: str) -> None:
    registry = Registry(engine)
    with Session(engine) as s, s.begin():
        registry.import_site(s, site_file(site))
    writer = BatchWriter(engine, registry)
    [stored] = writer.write(deliver(site, "gw-rogue", telemetry(0, smoke_1=1))).stored
    assert stored.pending
    with Session(engine) as s:
        gw = s.get(Gateway, (site, "gw-rogue"))
        assert gw is not None and gw.approval == Approval.PENDING


def test_auto_approve_site_accepts_unknown_devices_with_inferred_kind(
    engine: Engine, site: str
) -> None:
    registry = Registry(engine)
    with Session(engine) as s, s.begin():
        registry.import_site(s, site_file(site, auto=True))
    writer = BatchWriter(engine, registry)
    [stored] = writer.write(deliver(site, "gw-new", telemetry(0, smoke_7=0))).stored
    assert not stored.pending
    assert registry.lookup(site, "smoke-7") == DeviceLocation(DeviceKind.SMOKE, None, None)
    with Session(engine) as s:
        site_row = s.get(Site, site)
        assert site_row is not None and site_row.auto_approve


def test_gateway_birth_and_will_and_stale_state(engine: Engine, site: str) -> None:
    registry = Registry(engine)
    writer = BatchWriter(engine, registry)

    def state(status: GatewayStatus, minutes: int) -> GatewayState:
        return GatewayState(status=status, boot_id=BOOT, ts=T0 + timedelta(minutes=minutes))

    def online() -> bool | None:
        with Session(engine) as s:
            gw = s.get(Gateway, (site, "gw1"))
            return None if gw is None else gw.online

    r = writer.write(deliver(site, "gw1", state(GatewayStatus.ONLINE, 1)))
    assert (online(), r.gateway_changes, r.stored[0].is_state) == (True, 1, True)
    # The will was set at connect time, before the birth: it still ends this boot.
    writer.write(deliver(site, "gw1", state(GatewayStatus.OFFLINE, 0)))
    assert online() is False
    writer.write(deliver(site, "gw1", state(GatewayStatus.ONLINE, 2)))  # that boot ended
    assert online() is False
    reboot = GatewayState(
        status=GatewayStatus.ONLINE, boot_id="boot-0000000002", ts=T0 + timedelta(minutes=9)
    )
    writer.write(deliver(site, "gw1", reboot))
    assert online() is True
    old_boot = GatewayState(
        status=GatewayStatus.OFFLINE, boot_id=BOOT, ts=T0 + timedelta(minutes=3)
    )
    writer.write(deliver(site, "gw1", old_boot))  # an earlier boot's state, late: ignored
    assert online() is True
    with Session(engine) as s:
        assert s.scalar(select(Device)) is None  # a state message registers no device


@pytest.mark.parametrize(
    ("metrics", "kind"),
    [
        ({"temperature"}, DeviceKind.TEMPERATURE),
        ({"temperature", "battery"}, DeviceKind.HEAT),
        ({"current"}, DeviceKind.EBIKE_CHARGER),
        ({"smoke"}, DeviceKind.SMOKE),
        ({"smoke", "leak"}, None),
        ({"no_such_metric"}, None),
        (set(), None),
    ],
)
def test_infer_kind_picks_the_most_specific(metrics: set[str], kind: DeviceKind | None) -> None:
    assert infer_kind(metrics) is kind

"""Gateway online/offline from the retained birth and the broker-published last will."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.ingest import Ingest, StoredMessage
from cloud.registry import Registry
from cloud.registry.tables import Gateway
from linli.services import Mosquitto
from protocols.codec import encode, new_id
from protocols.messages import GatewayState, GatewayStatus
from protocols.topics import Channel, topic
from tests.cloud.ingest.ingest_support import config, running, until


def online(engine: Engine, site: str) -> bool | None:
    with Session(engine) as s:
        gw = s.get(Gateway, (site, "gw1"))
        return None if gw is None else gw.online


@pytest.mark.anyio
async def test_birth_then_will_on_a_crash(engine: Engine, mosquitto: Mosquitto, site: str) -> None:
    boot = new_id()
    state_topic = topic(site, "gw1", Channel.STATE)
    states: list[GatewayState] = []

    async def hook(batch: Sequence[StoredMessage]) -> None:
        states.extend(m.message for m in batch if isinstance(m.message, GatewayState))

    gateway = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"gw1-{site}")
    will = GatewayState(
        status=GatewayStatus.OFFLINE, boot_id=boot, ts=datetime.now(UTC), reason="will"
    )
    gateway.will_set(state_topic, encode(will), qos=1, retain=True)
    ingest = Ingest(config(mosquitto, site), engine, Registry(engine), on_stored=hook)
    async with running(ingest):
        gateway.connect("127.0.0.1", mosquitto.port, keepalive=5)
        gateway.loop_start()
        birth = GatewayState(status=GatewayStatus.ONLINE, boot_id=boot, ts=datetime.now(UTC))
        gateway.publish(state_topic, encode(birth), qos=1, retain=True).wait_for_publish(10)
        await until(lambda: online(engine, site) is True)
        gateway.loop_stop()  # a crash: no DISCONNECT, the socket just goes away
        sock = gateway.socket()
        assert sock is not None
        sock.close()
        await until(lambda: online(engine, site) is False)
    assert [s.status for s in states] == [GatewayStatus.ONLINE, GatewayStatus.OFFLINE]
    assert states[-1].reason == "will"
    assert ingest.stats.gateway_changes == 2
    # Clear the retained state so that the session broker does not carry it to other tests.
    cleaner = paho.Client(CallbackAPIVersion.VERSION2)
    cleaner.connect("127.0.0.1", mosquitto.port)
    cleaner.loop_start()
    cleaner.publish(state_topic, b"", qos=1, retain=True).wait_for_publish(10)
    cleaner.disconnect()
    cleaner.loop_stop()

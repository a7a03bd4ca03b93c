from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from protocols.codec import MAX_PAYLOAD_BYTES, MODELS, decode, encode, new_id
from protocols.errors import ProtocolError, RejectReason
from protocols.messages import (
    AccessDecision,
    AccessEvent,
    AccessKind,
    AccessMethod,
    AckStatus,
    Command,
    CommandAck,
    DeviceEvent,
    EventPriority,
    GatewayConfig,
    GatewayState,
    GatewayStatus,
    Model,
    Reading,
    Telemetry,
)
from protocols.topics import Channel, topic

GOLDEN = Path(__file__).parent / "golden"
T0 = datetime(2026, 11, 27, 8, 30, tzinfo=UTC)
ENV = {"msg_id": "m" * 32, "boot_id": "b" * 32, "seq": 7, "ts": T0}


def samples() -> dict[Channel, Model]:
    return {
        Channel.STATE: GatewayState(
            status=GatewayStatus.ONLINE, boot_id="b" * 32, ts=T0, agent_version="0.1.0"
        ),
        Channel.TELEMETRY: Telemetry(
            **ENV,
            readings=(
                Reading(device="smoke-1", metric="smoke", value=False, ts=T0),
                Reading(device="heat-1", metric="temperature", value=21.5, unit="°C", ts=T0),
            ),
        ),
        Channel.EVENT: DeviceEvent(
            **ENV, device="smoke-1", event="smoke.alarm", priority=EventPriority.SAFETY, value=True
        ),
        Channel.ACCESS: AccessEvent(
            **ENV,
            door="gate-east",
            kind=AccessKind.DECISION,
            decision=AccessDecision.GRANTED,
            reason="allow_list",
            method=AccessMethod.FACE,
            person_id="p-001",
            distance=0.41,
            liveness=0.9,
        ),
        Channel.ACK: CommandAck(**ENV, cmd_id="c" * 32, status=AckStatus.OK),
        Channel.CMD: Command(
            cmd_id="c" * 32,
            name="door.open",
            target="door-1",
            params={"seconds": 5.0},
            issued_at=T0,
            expires_at=T0 + timedelta(seconds=30),
        ),
        Channel.CONFIG: GatewayConfig(version=3, issued_at=T0, gallery_version=2),
    }


@pytest.mark.parametrize("channel", list(Channel))
def test_round_trip_and_golden(channel: Channel) -> None:
    message = samples()[channel]
    payload = encode(message)
    decoded = decode(topic("s1", "gw1", channel), payload)
    assert decoded.message == message
    assert decoded.topic.channel is channel
    golden = GOLDEN / f"{channel.value}.json"
    # The golden files pin the wire format: a change here breaks deployed devices.
    assert json.loads(payload) == json.loads(golden.read_text(encoding="utf-8"))


def test_every_channel_has_a_model_and_sample() -> None:
    assert set(MODELS) == set(Channel) == set(samples())


def _telemetry(**overrides: object) -> bytes:
    data = json.loads(encode(samples()[Channel.TELEMETRY]))
    data.update(overrides)
    return json.dumps(data).encode()


TEL = topic("s1", "gw1", Channel.TELEMETRY)


@pytest.mark.parametrize(
    ("topic_", "payload", "reason", "fragment"),
    [
        ("linli/v1/s1/gw1/nope", b"{}", RejectReason.BAD_TOPIC, "unknown channel"),
        ("linli/v1/s/1/gw1/telemetry", b"{}", RejectReason.BAD_TOPIC, "expected"),
        (TEL, b"\xff\xfe", RejectReason.NOT_UTF8, "utf-8"),
        (TEL, b"{not json", RejectReason.NOT_JSON, "JSON"),
        (TEL, b"[1,2]", RejectReason.SCHEMA, "payload"),
        (TEL, _telemetry(extra=1), RejectReason.SCHEMA, "extra"),
        (TEL, _telemetry(readings=[]), RejectReason.SCHEMA, "readings"),
        (TEL, _telemetry(seq=-1), RejectReason.SCHEMA, "seq"),
        (TEL, _telemetry(v=2), RejectReason.SCHEMA, "v"),
        (TEL, _telemetry(ts="2026-11-27T08:30:00"), RejectReason.SCHEMA, "ts"),
        (TEL, _telemetry(msg_id="short"), RejectReason.SCHEMA, "msg_id"),
        (
            TEL,
            _telemetry(
                readings=[{"device": "a/b", "metric": "x", "value": 1, "ts": T0.isoformat()}]
            ),
            RejectReason.SCHEMA,
            "device",
        ),
        (
            TEL,
            _telemetry(
                readings=[{"device": "a", "metric": "x", "value": "hot", "ts": T0.isoformat()}]
            ),
            RejectReason.SCHEMA,
            "value",
        ),
        (TEL, _telemetry(readings=[[[[[[[[[[[]]]]]]]]]]]), RejectReason.SCHEMA, "readings"),
        (TEL, b" " * (MAX_PAYLOAD_BYTES + 1), RejectReason.TOO_LARGE, "bytes"),
    ],
)
def test_malformed_rejected_with_reason(
    topic_: str, payload: bytes, reason: RejectReason, fragment: str
) -> None:
    with pytest.raises(ProtocolError) as info:
        decode(topic_, payload)
    assert info.value.reason is reason
    assert fragment.lower() in str(info.value).lower()
    assert info.value.topic == topic_


def test_non_finite_values_rejected() -> None:
    bad = _telemetry(
        readings=[{"device": "a", "metric": "x", "value": float("nan"), "ts": T0.isoformat()}]
    )
    with pytest.raises(ProtocolError) as info:
        decode(TEL, bad)
    assert info.value.reason in (RejectReason.SCHEMA, RejectReason.NOT_JSON)


def test_direction_enforced() -> None:
    cmd = encode(samples()[Channel.CMD])
    with pytest.raises(ProtocolError) as info:
        decode(topic("s1", "gw1", Channel.CMD), cmd, uplink=True)
    assert info.value.reason is RejectReason.WRONG_DIRECTION
    tel = encode(samples()[Channel.TELEMETRY])
    with pytest.raises(ProtocolError):
        decode(TEL, tel, uplink=False)
    assert decode(TEL, tel, uplink=True).message == samples()[Channel.TELEMETRY]


def test_command_expiry() -> None:
    with pytest.raises(ValueError, match="expires_at"):
        Command(cmd_id=new_id(), name="door.open", issued_at=T0, expires_at=T0)
    cmd = samples()[Channel.CMD]
    assert isinstance(cmd, Command)
    assert not cmd.expired(T0)
    assert cmd.expired(T0 + timedelta(seconds=30))


def test_thumbnail_bound() -> None:
    big = "A" * 40_000
    with pytest.raises(ValueError, match="thumbnail"):
        AccessEvent(**ENV, door="d", kind=AccessKind.DECISION, reason="x", thumbnail_jpeg_b64=big)


def test_models_are_frozen() -> None:
    msg = samples()[Channel.STATE]
    with pytest.raises(ValueError, match="frozen"):
        msg.status = GatewayStatus.OFFLINE  # type: ignore[attr-defined]


def test_new_ids_are_unique_and_valid() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    env = {**ENV, "msg_id": ids.pop()}
    assert CommandAck(**env, cmd_id=new_id(), status=AckStatus.OK)


def test_nul_in_free_text_is_refused() -> None:
    data = json.loads(encode(samples()[Channel.ACCESS]))
    data["person_name"] = "Li\u0000Lei"
    with pytest.raises(ProtocolError) as info:
        decode(topic("s1", "gw1", Channel.ACCESS), json.dumps(data).encode())
    assert info.value.reason is RejectReason.SCHEMA
    assert "person_name" in info.value.detail
    data["person_name"] = "李雷"
    assert decode(topic("s1", "gw1", Channel.ACCESS), json.dumps(data).encode())

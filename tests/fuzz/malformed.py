"""Malformed MQTT traffic for the live ingest fuzz run, each item with the reason it must get.

Every generator builds its item to break the contract in one known way; :func:`malformed`
then checks the reason with ``protocols.codec.decode`` so a case that accidentally came out
valid (or broken another way) is caught here rather than miscounted at the ingest.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from protocols.codec import MAX_PAYLOAD_BYTES, decode, encode, new_id
from protocols.errors import ProtocolError, RejectReason
from protocols.messages import Command, DeviceEvent, Reading, Telemetry
from protocols.topics import PREFIX, Channel, topic

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Frame:
    topic: str
    payload: bytes
    reason: RejectReason


def _telemetry(rng: random.Random) -> Telemetry:
    ts = T0 + timedelta(seconds=rng.randrange(86_400))
    return Telemetry(
        msg_id=new_id(),
        boot_id=new_id(),
        seq=rng.randrange(1000),
        ts=ts,
        readings=tuple(
            Reading(device=f"x{i}", metric="temperature", value=rng.uniform(-40, 60), ts=ts)
            for i in range(rng.randrange(1, 4))
        ),
    )


def _event(rng: random.Random) -> DeviceEvent:
    return DeviceEvent(
        msg_id=new_id(),
        boot_id=new_id(),
        seq=rng.randrange(1000),
        ts=T0,
        device="smoke-1",
        event="smoke.alarm",
        value=True,
    )


def _json_noise(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(7 if depth < 3 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-(2**40), 2**40)
    if kind == 3:
        return rng.uniform(-1e9, 1e9)
    if kind == 4:
        return "".join(chr(rng.randrange(0x20, 0x3000)) for _ in range(rng.randrange(12)))
    if kind == 5:
        return [_json_noise(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{rng.randrange(99)}": _json_noise(rng, depth + 1) for _ in range(rng.randrange(4))}


class Maker:
    def __init__(self, site: str, gateway: str, seed: int) -> None:
        self.rng = random.Random(seed)
        self.site = site
        self.gateway = gateway
        self.tel = topic(site, gateway, Channel.TELEMETRY)

    # -- payloads on a good topic ---------------------------------------------------------
    def not_utf8(self) -> Frame:
        rng = self.rng
        body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
        cut = rng.randrange(len(body) + 1)
        return Frame(self.tel, body[:cut] + b"\xc3\x28" + body[cut:], RejectReason.NOT_UTF8)

    def not_json(self) -> Frame:
        rng = self.rng
        valid = encode(_telemetry(rng))
        choice = rng.randrange(4)
        if choice == 0:  # a truncated message
            payload = valid[: rng.randrange(0, len(valid) - 1)]
        elif choice == 1:  # text that is not JSON
            payload = "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(80)).encode()
            payload = b"x" + payload
        elif choice == 2:  # trailing garbage
            payload = valid + b"}"
        else:  # a raw control character inside a string is not JSON
            payload = valid.replace(b'"temperature"', b'"temp\x01erature"', 1)
        return Frame(self.tel, payload, RejectReason.NOT_JSON)

    def schema(self) -> Frame:
        rng = self.rng
        doc: dict[str, Any] = json.loads(encode(_telemetry(rng)))
        choice = rng.randrange(8)
        if choice == 0:
            del doc[rng.choice(["msg_id", "boot_id", "seq", "ts", "readings"])]
        elif choice == 1:
            doc[rng.choice(list(doc))] = _json_noise(rng)
            doc["seq"] = -1 - rng.randrange(100)  # noise could fit; this never does
        elif choice == 2:
            doc["readings"][0]["device"] = rng.choice(["a/b", "", "+", "#", "-x", "d" * 65])
        elif choice == 3:
            doc["readings"][0]["value"] = rng.choice(["hot", None, [1], {"v": 1}])
        elif choice == 4:
            doc[f"extra_{rng.randrange(99)}"] = _json_noise(rng)
        elif choice == 5:
            doc["readings"] = []
        elif choice == 6:
            doc["ts"] = "2026-11-27T08:00:00"  # no time zone
        else:
            return Frame(self.tel, encode(_event(rng)), RejectReason.SCHEMA)  # wrong channel
        top = rng.random() < 0.3
        payload = json.dumps(_json_noise(rng) if top and choice == 4 else doc).encode()
        return Frame(self.tel, payload, RejectReason.SCHEMA)

    def too_large(self) -> Frame:
        doc = json.loads(encode(_telemetry(self.rng)))
        doc["pad"] = "x" * (MAX_PAYLOAD_BYTES + self.rng.randrange(1, 5000))
        return Frame(self.tel, json.dumps(doc).encode(), RejectReason.TOO_LARGE)

    # -- good payloads on bad topics ------------------------------------------------------
    def bad_topic(self) -> Frame:
        channel = self.rng.choice(["nope", "telemetry2", "TELEMETRY", "", "state.x"])
        t = f"{PREFIX}/{self.site}/{self.gateway}/{channel}"
        return Frame(t, encode(_telemetry(self.rng)), RejectReason.BAD_TOPIC)

    def bad_id(self) -> Frame:
        gateway = self.rng.choice(["", "-gw", "gw!", "gw id", "gw%u", "网关", "g" * 65, ".gw"])
        t = f"{PREFIX}/{self.site}/{gateway}/{Channel.TELEMETRY.value}"
        return Frame(t, encode(_telemetry(self.rng)), RejectReason.BAD_ID)

    def wrong_direction(self) -> Frame:
        command = Command(
            cmd_id=new_id(),
            name="door.open",
            target="door-1",
            issued_at=T0,
            expires_at=T0 + timedelta(seconds=30),
        )
        channel = self.rng.choice([Channel.CMD, Channel.CONFIG])
        return Frame(
            topic(self.site, self.gateway, channel), encode(command), RejectReason.WRONG_DIRECTION
        )

    def nul_in_key(self) -> Frame:
        """An unknown key with a NUL in it: the reject detail names the key, and PostgreSQL
        text columns refuse NUL (found by this fuzz run; ingest now escapes it)."""
        doc = json.loads(encode(_telemetry(self.rng)))
        doc["bad\u0000key"] = 1
        return Frame(self.tel, json.dumps(doc).encode(), RejectReason.SCHEMA)


def malformed(site: str, gateway: str, count: int, seed: int = 8) -> list[Frame]:
    """``count`` malformed frames of every kind (too_large ones kept few: 300 KB each)."""
    maker = Maker(site, gateway, seed)
    weighted: list[tuple[Callable[[], Frame], int]] = [
        (maker.not_utf8, 20),
        (maker.not_json, 20),
        (maker.schema, 30),
        (maker.bad_topic, 10),
        (maker.bad_id, 10),
        (maker.wrong_direction, 10),
    ]
    makers = [m for m, w in weighted for _ in range(w)]
    frames = [maker.too_large() for _ in range(10)] + [maker.nul_in_key() for _ in range(10)]
    while len(frames) < count:
        frames.append(maker.rng.choice(makers)())
    for f in frames:
        try:
            decode(f.topic, f.payload, uplink=True)
        except ProtocolError as exc:
            assert exc.reason is f.reason, (f, exc)
        else:
            raise AssertionError(f"not malformed: {f}")
    maker.rng.shuffle(frames)
    return frames

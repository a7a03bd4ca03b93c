"""decode's shortcuts (parsed-topic cache, ASCII payloads as bytes) change no outcome."""

from __future__ import annotations

import json

import pytest

from protocols import codec
from protocols.codec import decode, encode
from protocols.errors import ProtocolError, RejectReason
from protocols.messages import AccessEvent
from protocols.topics import Channel, topic
from tests.protocols.test_codec import samples


def test_a_cached_topic_decodes_like_a_fresh_one() -> None:
    tel = encode(samples()[Channel.TELEMETRY])
    t = topic("s1", "gw-cache", Channel.TELEMETRY)
    first = decode(t, tel, uplink=True)
    assert t in codec._TOPICS
    second = decode(t, tel, uplink=True)
    assert second == first
    assert (second.topic.site, second.topic.gateway) == ("s1", "gw-cache")
    # The direction check still applies to a topic taken from the cache.
    with pytest.raises(ProtocolError) as info:
        decode(t, tel, uplink=False)
    assert info.value.reason is RejectReason.WRONG_DIRECTION


def test_a_bad_topic_is_never_cached_and_rejected_every_time() -> None:
    bad = "linli/v1/s1/gw1/nope"
    for _ in range(2):
        with pytest.raises(ProtocolError) as info:
            decode(bad, b"{}")
        assert info.value.reason is RejectReason.BAD_TOPIC
        assert info.value.topic == bad
    assert bad not in codec._TOPICS


def test_non_ascii_payloads_are_checked_for_utf8_and_decoded() -> None:
    data = json.loads(encode(samples()[Channel.ACCESS]))
    data["person_name"] = "李雷"
    t = topic("s1", "gw1", Channel.ACCESS)
    good = json.dumps(data, ensure_ascii=False).encode()
    assert not good.isascii()
    message = decode(t, good).message
    assert isinstance(message, AccessEvent)
    assert message.person_name == "李雷"
    with pytest.raises(ProtocolError) as info:
        decode(t, good.replace("李".encode(), b"\xe6\x9d"))  # a truncated sequence
    assert info.value.reason is RejectReason.NOT_UTF8

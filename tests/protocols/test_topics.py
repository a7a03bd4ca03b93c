from __future__ import annotations

import pytest

from protocols.errors import ProtocolError, RejectReason
from protocols.ids import check_id
from protocols.topics import (
    Channel,
    Topic,
    parse_topic,
    shared,
    topic,
    topic_filter,
    uplink_filters,
)


def test_build_and_parse_round_trip() -> None:
    for channel in Channel:
        text = topic("site-1", "gw.01", channel)
        assert text == f"linli/v1/site-1/gw.01/{channel.value}"
        assert parse_topic(text) == Topic("site-1", "gw.01", channel)


@pytest.mark.parametrize(
    "bad",
    ["", "a/b", "a+b", "a#", "+", "#", "a b", "a\x00b", "a\nb", "é", "-lead", "x" * 65, "a%c"],
)
def test_ids_reject_wildcards_separators_and_control_characters(bad: str) -> None:
    with pytest.raises(ProtocolError) as info:
        check_id(bad, "gateway")
    assert info.value.reason is RejectReason.BAD_ID
    assert "gateway" in info.value.detail
    with pytest.raises(ProtocolError):
        topic(bad, "gw", Channel.TELEMETRY)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("linli/v1/s/g", "expected"),
        ("linli/v1/s/g/telemetry/extra", "expected"),
        ("other/v1/s/g/telemetry", "expected"),
        ("linli/v2/s/g/telemetry", "unsupported version"),
        ("linli/v1/s/g/bogus", "unknown channel"),
        ("linli/v1/s+/g/telemetry", "site"),
        ("linli/v1/s/#/telemetry", "gateway"),
    ],
)
def test_parse_rejects_with_reason_and_topic(text: str, fragment: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_topic(text)
    assert fragment in info.value.detail
    assert info.value.topic == text


def test_filters() -> None:
    assert topic_filter() == "linli/v1/+/+/+"
    assert topic_filter(Channel.CMD, "s1", "g1") == "linli/v1/s1/g1/cmd"
    filters = uplink_filters("s1")
    assert "linli/v1/s1/+/telemetry" in filters
    assert not any(f.endswith(("/cmd", "/config")) for f in filters)
    assert shared("ingest", "linli/v1/+/+/telemetry") == "$share/ingest/linli/v1/+/+/telemetry"
    with pytest.raises(ProtocolError):
        shared("bad/group", "x")


def test_channel_directions() -> None:
    assert Channel.STATE.retained and Channel.CONFIG.retained
    assert not Channel.TELEMETRY.retained
    assert {c for c in Channel if not c.uplink} == {Channel.CMD, Channel.CONFIG}

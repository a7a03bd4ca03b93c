"""The topic grammar. Every topic string in Linli is built or parsed here and nowhere else.

    linli/v1/{site}/{gateway}/{channel}

Uplink channels (gateway → cloud): ``state`` (retained birth / last will), ``telemetry``,
``event``, ``access``, ``ack``. Downlink channels (cloud → gateway): ``cmd`` and ``config``
(retained). Device, door and camera ids travel in the payload, not the topic, so one
subscription per gateway covers every device and ACLs stay one pattern per gateway.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from protocols.errors import ProtocolError, RejectReason
from protocols.ids import check_id

ROOT = "linli"
VERSION = "v1"
PREFIX = f"{ROOT}/{VERSION}"


class Channel(StrEnum):
    STATE = "state"
    TELEMETRY = "telemetry"
    EVENT = "event"
    ACCESS = "access"
    ACK = "ack"
    CMD = "cmd"
    CONFIG = "config"

    @property
    def uplink(self) -> bool:
        return self not in (Channel.CMD, Channel.CONFIG)

    @property
    def retained(self) -> bool:
        """Whether messages on this channel are published with the MQTT retain flag."""
        return self in (Channel.STATE, Channel.CONFIG)


UPLINK = frozenset(c for c in Channel if c.uplink)
DOWNLINK = frozenset(c for c in Channel if not c.uplink)


@dataclass(frozen=True, slots=True)
class Topic:
    site: str
    gateway: str
    channel: Channel

    def __post_init__(self) -> None:
        check_id(self.site, "site")
        check_id(self.gateway, "gateway")

    def __str__(self) -> str:
        return f"{PREFIX}/{self.site}/{self.gateway}/{self.channel.value}"


def topic(site: str, gateway: str, channel: Channel) -> str:
    """Build a topic string; raises :class:`ProtocolError` for an invalid id."""
    return str(Topic(site, gateway, channel))


def parse_topic(value: str) -> Topic:
    """Parse a concrete (wildcard-free) topic, raising :class:`ProtocolError` with the reason."""
    parts = value.split("/")
    if len(parts) != 5 or parts[0] != ROOT:
        raise ProtocolError(
            RejectReason.BAD_TOPIC, f"expected {PREFIX}/SITE/GATEWAY/CHANNEL", value
        )
    if parts[1] != VERSION:
        raise ProtocolError(RejectReason.BAD_TOPIC, f"unsupported version {parts[1]!r}", value)
    try:
        channel = Channel(parts[4])
    except ValueError:
        raise ProtocolError(
            RejectReason.BAD_TOPIC, f"unknown channel {parts[4]!r}", value
        ) from None
    try:
        return Topic(parts[2], parts[3], channel)
    except ProtocolError as exc:
        raise ProtocolError(exc.reason, exc.detail, value) from exc


def _level(value: str | None, what: str) -> str:
    return "+" if value is None else check_id(value, what)


def topic_filter(
    channel: Channel | None = None, site: str | None = None, gateway: str | None = None
) -> str:
    """A subscription filter; ``None`` means any (``+``)."""
    ch = "+" if channel is None else channel.value
    return f"{PREFIX}/{_level(site, 'site')}/{_level(gateway, 'gateway')}/{ch}"


def uplink_filters(site: str | None = None) -> tuple[str, ...]:
    """Filters the cloud subscribes to: every uplink channel of every gateway (of one site)."""
    return tuple(topic_filter(c, site) for c in Channel if c.uplink)


def shared(group: str, filter_: str) -> str:
    """An MQTT 5 shared subscription, so several ingest processes split one stream."""
    return f"$share/{check_id(group, 'share group')}/{filter_}"

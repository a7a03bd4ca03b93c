"""Encode and decode messages with their topics. The only place payload bytes are parsed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import cast

from pydantic import ValidationError
from pydantic_core import from_json

from protocols.errors import ProtocolError, RejectReason
from protocols.messages import (
    AccessEvent,
    Command,
    CommandAck,
    DeviceEvent,
    GatewayConfig,
    GatewayState,
    Message,
    Model,
    Telemetry,
)
from protocols.topics import Channel, Topic, parse_topic

MAX_PAYLOAD_BYTES = 256 * 1024

MODELS: dict[Channel, type[Model]] = {
    Channel.STATE: GatewayState,
    Channel.TELEMETRY: Telemetry,
    Channel.EVENT: DeviceEvent,
    Channel.ACCESS: AccessEvent,
    Channel.ACK: CommandAck,
    Channel.CMD: Command,
    Channel.CONFIG: GatewayConfig,
}
CHANNELS: dict[type[Model], Channel] = {model: ch for ch, model in MODELS.items()}

_TOPICS: dict[str, Topic] = {}
"""Topics already parsed: a gateway sends on the same few topics all day, and parsing one
(split, channel lookup, two id checks) costs as much as a tenth of decoding a small message.
Only valid topics are kept (a bad one raises every time); bounded by _TOPICS_MAX."""
_TOPICS_MAX = 10_000


@dataclass(frozen=True, slots=True)
class Decoded:
    topic: Topic
    message: Message


def new_id() -> str:
    """A fresh message, boot or command id."""
    return uuid.uuid4().hex


def channel_of(message: Model) -> Channel:
    return CHANNELS[type(message)]


def encode(message: Model) -> bytes:
    """Serialise a message to its JSON payload (compact, UTF-8)."""
    data = message.model_dump_json(exclude_none=True).encode()
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            RejectReason.TOO_LARGE, f"{len(data)} bytes > {MAX_PAYLOAD_BYTES}", None
        )
    return data


def _first_error(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "payload"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def decode(topic: str, payload: bytes, *, uplink: bool | None = None) -> Decoded:
    """Parse and validate one message. Raises :class:`ProtocolError` with the reason.

    ``uplink=True`` (the cloud) refuses downlink channels and ``uplink=False`` (a gateway)
    refuses uplink ones, so a misrouted message is a reject, not a surprise.
    """
    parsed = _TOPICS.get(topic)
    if parsed is None:
        parsed = parse_topic(topic)
        if len(_TOPICS) >= _TOPICS_MAX:
            _TOPICS.clear()
        _TOPICS[topic] = parsed
    if uplink is not None and parsed.channel.uplink != uplink:
        raise ProtocolError(
            RejectReason.WRONG_DIRECTION,
            f"channel {parsed.channel.value!r} is not read here",
            topic,
        )
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            RejectReason.TOO_LARGE, f"{len(payload)} bytes > {MAX_PAYLOAD_BYTES}", topic
        )
    if not payload.isascii():  # ASCII is UTF-8; otherwise check it here, for its own reason
        try:
            payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(RejectReason.NOT_UTF8, str(exc), topic) from exc
    if b"NaN" in payload or b"Infinity" in payload:
        # pydantic's JSON parser accepts these non-JSON tokens; a free-form field would keep a
        # NaN that no longer round-trips. A strict parse is only paid when the bytes appear.
        try:
            from_json(payload, allow_inf_nan=False)
        except ValueError as exc:
            raise ProtocolError(RejectReason.NOT_JSON, str(exc), topic) from exc
    model = MODELS[parsed.channel]
    try:
        message = model.model_validate_json(payload)
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise ProtocolError(RejectReason.NOT_JSON, _first_error(exc), topic) from exc
        raise ProtocolError(RejectReason.SCHEMA, _first_error(exc), topic) from exc
    return Decoded(parsed, cast(Message, message))

"""Hypothesis strategies for every wire model in ``protocols.messages``.

The strategies follow the models' declared constraints (id and name patterns, lengths, bounds),
so every example is a valid instance; the fuzz tests then break them on purpose.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from protocols.messages import (
    MAX_THUMBNAIL_BYTES,
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

idents = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", fullmatch=True)
names = st.from_regex(r"[a-z][a-z0-9_]{0,12}(\.[a-z0-9_]{1,12}){0,3}", fullmatch=True)
msg_ids = st.from_regex(r"[A-Za-z0-9_\-]{8,64}", fullmatch=True)
offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))]
)
times = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1), timezones=offsets
)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = finite | st.booleans()
# Free wire text never carries NUL (protocols.messages.NO_NUL).
safe = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
texts = st.text(safe, max_size=40)
attr_values = st.none() | st.booleans() | finite | texts
attrs = st.dictionaries(names, attr_values, max_size=5)

json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | finite | st.integers(-(2**63), 2**63 - 1) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
"""Any JSON document (integers within 64 bits)."""


def envelope() -> dict[str, st.SearchStrategy[Any]]:
    return {
        "msg_id": msg_ids,
        "boot_id": msg_ids,
        "seq": st.integers(0, 2**63 - 1),
        "ts": times,
        "historical": st.booleans(),
    }


readings = st.builds(
    Reading,
    device=idents,
    metric=names,
    value=scalars,
    unit=st.none() | st.text(safe, max_size=16),
    ts=times,
)

gateway_states = st.builds(
    GatewayState,
    status=st.sampled_from(GatewayStatus),
    boot_id=msg_ids,
    ts=times,
    agent_version=st.none() | st.text(safe, max_size=32),
    reason=st.none() | st.text(safe, max_size=60),
)

telemetry = st.builds(
    Telemetry, **envelope(), readings=st.lists(readings, min_size=1, max_size=8).map(tuple)
)

device_events = st.builds(
    DeviceEvent,
    **envelope(),
    device=idents,
    event=names,
    priority=st.sampled_from(EventPriority),
    value=st.none() | scalars,
    attrs=attrs,
)

access_events = st.builds(
    AccessEvent,
    **envelope(),
    door=idents,
    kind=st.sampled_from(AccessKind),
    decision=st.sampled_from(AccessDecision),
    reason=names,
    method=st.sampled_from(AccessMethod),
    camera=st.none() | idents,
    person_id=st.none() | idents,
    person_name=st.none() | st.text(safe, max_size=64),
    distance=st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False),
    liveness=st.none() | st.floats(min_value=0, max_value=1),
    thumbnail_jpeg_b64=st.none()
    | st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
        max_size=(MAX_THUMBNAIL_BYTES * 4) // 3 + 4,
    ),
    attrs=attrs,
)


@st.composite
def commands(draw: st.DrawFn) -> Command:
    issued = draw(times)
    return Command(
        cmd_id=draw(msg_ids),
        name=draw(names),
        target=draw(st.none() | idents),
        params=draw(attrs),
        issued_at=issued,
        expires_at=issued + draw(st.timedeltas(timedelta(microseconds=1), timedelta(days=3650))),
        issued_by=draw(st.none() | st.text(safe, max_size=64)),
    )


command_acks = st.builds(
    CommandAck,
    **envelope(),
    cmd_id=msg_ids,
    status=st.sampled_from(AckStatus),
    reason=st.none() | st.text(safe, max_size=80),
    result=attrs,
)

gateway_configs = st.builds(
    GatewayConfig,
    version=st.integers(0, 2**63 - 1),
    issued_at=times,
    rules=st.lists(st.dictionaries(texts, json_values, max_size=4), max_size=3).map(tuple),
    gallery_version=st.none() | st.integers(0, 2**31),
    settings=attrs,
)

MODELS: dict[type[Model], st.SearchStrategy[Any]] = {
    GatewayState: gateway_states,
    Telemetry: telemetry,
    DeviceEvent: device_events,
    AccessEvent: access_events,
    Command: commands(),
    CommandAck: command_acks,
    GatewayConfig: gateway_configs,
}
"""A strategy of valid instances for every message model (one per channel)."""

any_message: st.SearchStrategy[Model] = st.one_of(*MODELS.values())

"""Identifiers that appear in topics: site, gateway, device, door, camera."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from protocols.errors import ProtocolError, RejectReason

# A positive character set rather than a list of forbidden ones: no MQTT wildcard (+ #), no level
# separator (/), no control characters, no spaces, and nothing that needs escaping in a file name,
# a URL path or an ACL pattern (mosquitto expands %c/%u in ACLs, so '%' is out too).
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
ID_MAX_LENGTH = 64


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid identifier, else raise :class:`ProtocolError`."""
    if not isinstance(value, str) or ID_PATTERN.fullmatch(value) is None:
        raise ProtocolError(
            RejectReason.BAD_ID,
            f"{what} {value!r} must be 1-{ID_MAX_LENGTH} characters of A-Z a-z 0-9 _ . - "
            "and start with a letter or digit",
        )
    return value


_CHECKED: set[str] = set()
"""Identifiers already found valid: ingest sees the same devices in every message, and the
pattern check is a quarter of decoding a telemetry message. Bounded by _CHECKED_MAX."""
_CHECKED_MAX = 100_000


def _validate(value: str) -> str:
    if value in _CHECKED:
        return value
    try:
        check_id(value)
    except ProtocolError as exc:
        raise ValueError(exc.detail) from exc
    if len(_CHECKED) >= _CHECKED_MAX:
        _CHECKED.clear()
    _CHECKED.add(value)
    return value


Ident = Annotated[str, AfterValidator(_validate)]
"""A validated identifier, for use in pydantic models."""

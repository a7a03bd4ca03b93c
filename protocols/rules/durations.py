"""Durations (``30s``, ``5m``, ``1h30m``, ``24h``) and times of day (``'22:00'``) in rule files."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

MAX_DURATION_S = 366 * 86400.0
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_TIME = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)")


def parse_duration(value: object) -> float:
    """Seconds from ``30s``/``5m``/``1h30m``/``2d``/``500ms`` or a plain number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 5m, 24h")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if _WHOLE.fullmatch(text) is None:
            raise ValueError(f"{value!r} is not a duration such as 30s, 5m, 1h30m, 24h")
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
    else:
        raise ValueError("expected a duration such as 30s, 5m, 24h")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError("must be > 0")
    if seconds > MAX_DURATION_S:
        raise ValueError("must be at most 366d")
    return seconds


def format_duration(seconds: float) -> str:
    """The shortest exact spelling: ``90`` → ``1m30s``; fractions fall back to ``ms``."""
    if seconds != int(seconds):
        return f"{round(seconds * 1000)}ms"
    rest = int(seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out) or "0s"


def parse_time_of_day(value: object) -> int:
    """Minutes after midnight from ``'HH:MM'`` (``'24:00'`` = end of day).

    Unquoted ``22:00`` in YAML 1.1 is the base-60 integer 1320 (= 22·60 + 0); that is
    accepted and read back as the same minutes, so both spellings work.
    """
    if isinstance(value, bool):
        raise ValueError("expected a time of day such as '22:00'")
    if isinstance(value, int):
        minutes = value
    elif isinstance(value, str):
        match = _TIME.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{value!r} is not a time of day such as '22:00'")
        minutes = int(match.group(1)) * 60 + int(match.group(2))
    else:
        raise ValueError("expected a time of day such as '22:00'")
    if not 0 <= minutes <= 1440:
        raise ValueError("must be between 00:00 and 24:00")
    return minutes


def format_time_of_day(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
]
"""Seconds; written as ``30s``, ``5m``, ``24h`` in rule files."""

TimeOfDay = Annotated[
    int,
    BeforeValidator(parse_time_of_day),
    PlainSerializer(format_time_of_day, return_type=str),
]
"""Minutes after midnight; written ``'22:00'``."""

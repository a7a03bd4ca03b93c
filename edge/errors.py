"""The one error base of the edge agent; every failure it raises on purpose derives from it."""

from __future__ import annotations


class EdgeError(Exception):
    """Base of the edge agent's errors."""


class ConfigError(EdgeError):
    """The configuration file is missing, unreadable or invalid. ``field`` names the culprit."""

    def __init__(self, message: str, field: str | None = None) -> None:
        self.field = field
        super().__init__(message)


class DriverError(EdgeError):
    """A driver could not open or read its hardware; the supervisor restarts it."""


class CommandFailed(EdgeError):
    """A command handler tried and failed; ``reason`` goes into the CommandAck."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class CommandRefused(EdgeError):
    """A command handler refuses a command without executing it (bad target, bad params)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

"""The governance errors; routers map them to 404 / 403 / 409 / 422."""

from __future__ import annotations


class GovError(ValueError):
    """Base of every governance error."""


class NotFound(GovError):
    def __init__(self, what: str, key: object) -> None:
        self.what = what
        self.key = key
        super().__init__(f"{what} {key} not found")


class Invalid(GovError):
    """Bad input the schema could not catch (unknown org, category…): a 422 naming ``field``."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class Refused(GovError):
    """The action is legal but this person may not do it (or not yet): a 403 or 409."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        self.conflict = conflict
        super().__init__(message)

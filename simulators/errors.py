"""The one error base of the simulators package."""

from __future__ import annotations


class SimulatorError(Exception):
    """Bad simulator input: an unknown metric, a bad site or scenario file, an impossible fault.

    ``where`` names the file, device or field the problem is about, so the message says what to fix.
    """

    def __init__(self, detail: str, where: str | None = None) -> None:
        self.detail = detail
        self.where = where
        super().__init__(f"{where}: {detail}" if where else detail)

"""The one error base of the gate package."""

from __future__ import annotations


class GateError(Exception):
    """Base of every error raised by :mod:`edge.gate`."""


class ModelFilesMissing(GateError):
    """The dlib model files (package ``face-recognition-models``) cannot be found."""


class SourceError(GateError):
    """A video source cannot be opened or read."""

    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail


class ImageError(GateError):
    """An image file is unreadable or holds no usable face (or more than one)."""

    def __init__(self, path: str, reason: str, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.reason = reason
        self.detail = detail


class GalleryError(GateError):
    """A gallery file or bundle is malformed, or its hash does not match."""

"""The gallery bundle: what the cloud distributes to edges — encodings only, never photos.

A bundle is one JSON document (``format = "linli.gallery/1"``) served as bytes; the
``gallery.sync`` command carries its version and SHA-256 so the edge verifies what it fetched.
Encodings travel as base64 of 128 little-endian float32 values (exact, compact). ``erased``
lists the people erased up to this version, so an edge also purges anything it cached.
Pure: pydantic, numpy and the standard library only (the cloud imports it without dlib).
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Annotated, Literal

import numpy as np
import numpy.typing as npt
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from edge.gate.errors import GalleryError
from edge.gate.matching import Gallery
from protocols.ids import Ident

FORMAT = "linli.gallery/1"
ENCODING_BYTES = 128 * 4
EncodingB64 = Annotated[str, Field(min_length=684, max_length=684)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BundlePerson(_Model):
    person_id: Ident
    name: Annotated[str, Field(max_length=64)] | None = None
    encodings: tuple[EncodingB64, ...] = Field(min_length=1)


class Bundle(_Model):
    format: Literal["linli.gallery/1"] = "linli.gallery/1"
    version: int = Field(ge=1)
    created_at: AwareDatetime
    people: tuple[BundlePerson, ...] = ()
    erased: tuple[Ident, ...] = ()

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    def gallery(self) -> Gallery:
        ids: list[str] = []
        rows: list[npt.NDArray[np.float32]] = []
        for person in self.people:
            for b64 in person.encodings:
                ids.append(person.person_id)
                rows.append(decode_encoding(b64))
        matrix = np.stack(rows) if rows else np.zeros((0, 128), np.float32)
        return Gallery(ids, matrix, version=self.version)

    def names(self) -> dict[str, str]:
        return {p.person_id: p.name for p in self.people if p.name}


def encode_encoding(vector: npt.ArrayLike) -> str:
    data = np.asarray(vector, dtype="<f4")
    if data.shape != (128,):
        raise GalleryError(f"an encoding has 128 values, not {data.shape}")
    return base64.b64encode(data.tobytes()).decode()


def decode_encoding(text: str) -> npt.NDArray[np.float32]:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != ENCODING_BYTES:
        raise GalleryError(f"an encoding is {ENCODING_BYTES} bytes, not {len(raw)}")
    return np.frombuffer(raw, dtype="<f4").astype(np.float32)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build(
    version: int,
    created_at: datetime,
    people: dict[str, tuple[str | None, list[npt.NDArray[np.float32]]]],
    erased: list[str] | tuple[str, ...] = (),
) -> Bundle:
    """A bundle from ``person_id → (name, encodings)``, sorted for a stable hash."""
    return Bundle(
        version=version,
        created_at=created_at,
        people=tuple(
            BundlePerson(
                person_id=pid, name=name, encodings=tuple(encode_encoding(e) for e in encs)
            )
            for pid, (name, encs) in sorted(people.items())
            if encs
        ),
        erased=tuple(sorted(set(erased))),
    )


def parse(data: bytes, expected_sha256: str | None = None) -> Bundle:
    """Verify (if a hash is given) and parse bundle bytes; raises :class:`GalleryError`."""
    if expected_sha256 is not None:
        actual = sha256(data)
        if actual != expected_sha256.lower():
            raise GalleryError(f"gallery hash mismatch: got {actual}, expected {expected_sha256}")
    try:
        return Bundle.model_validate_json(data)
    except ValidationError as exc:
        raise GalleryError(f"malformed gallery bundle: {exc.errors()[0]['msg']}") from exc

"""Gallery storage: people, encodings, consent, published versions, erasures.

Two stores implement :class:`GalleryStore`: :class:`FileGallery` (one JSON file, for the
standalone ``linli faces --gallery PATH``) and :class:`cloud.faces.dbstore.DbGallery`
(SQLAlchemy tables on ``cloud.db.Base``). Photos are never stored: only encodings, the
photo's SHA-256 (duplicate check) and an optional small thumbnail that expires.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge.gate import bundle as bundles
from edge.gate.errors import GalleryError

Vector = npt.NDArray[np.float32]


class FacesError(Exception):
    """Base of :mod:`cloud.faces` errors."""


class NotFound(FacesError):
    pass


@dataclass(frozen=True, slots=True)
class Consent:
    person_id: str
    given_by: str
    basis: str
    at: datetime


@dataclass(frozen=True, slots=True)
class StoredEncoding:
    person_id: str
    vector: Vector
    image_sha256: str
    source: str


@dataclass(frozen=True, slots=True)
class VersionInfo:
    version: int
    sha256: str
    size: int
    created_at: datetime
    token: str
    """Capability for fetching this version's bundle (the edge gets it in the URL)."""


class GalleryStore(Protocol):
    def consent(self, person_id: str) -> Consent | None: ...
    def record_consent(self, consent: Consent) -> None: ...
    def people(self) -> dict[str, str | None]: ...
    def encodings(self) -> list[StoredEncoding]: ...
    def add(
        self,
        encoding: StoredEncoding,
        *,
        name: str | None,
        at: datetime,
        thumbnail: bytes | None = None,
        thumbnail_expires: datetime | None = None,
    ) -> None: ...
    def erase(self, person_id: str, *, by: str, at: datetime) -> int: ...
    def erased(self) -> list[str]: ...
    def publish(self, at: datetime) -> VersionInfo: ...
    def latest(self) -> VersionInfo | None: ...
    def version_info(self, version: int) -> VersionInfo: ...
    def bundle(self, version: int) -> bytes: ...
    def purge_thumbnails(self, now: datetime) -> int: ...
    def thumbnails(self) -> int: ...


def make_bundle(store: GalleryStore, version: int, at: datetime) -> bytes:
    """The bundle bytes for the store's current people (shared by both stores)."""
    names = store.people()
    grouped: dict[str, tuple[str | None, list[Vector]]] = {}
    for enc in store.encodings():
        grouped.setdefault(enc.person_id, (names.get(enc.person_id), []))[1].append(enc.vector)
    erased = [pid for pid in store.erased() if pid not in grouped]  # re-enrolled since: present
    return bundles.build(version, at, grouped, erased).to_bytes()


def _iso(value: datetime) -> str:
    return value.isoformat()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


class FileGallery:
    """A gallery in one JSON file (atomic rewrite); published bundles in ``PATH.bundles/``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.bundle_dir = path.with_name(path.name + ".bundles")
        self._data: dict[str, Any] = {
            "people": {},
            "consents": {},
            "versions": [],
            "erasures": [],
        }
        if path.exists():
            try:
                self._data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise GalleryError(f"{path}: not a gallery file ({exc})") from exc

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w") as fh:
            json.dump(self._data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def consent(self, person_id: str) -> Consent | None:
        raw = self._data["consents"].get(person_id)
        if raw is None:
            return None
        return Consent(person_id, raw["given_by"], raw["basis"], _dt(raw["at"]))

    def record_consent(self, consent: Consent) -> None:
        self._data["consents"][consent.person_id] = {
            "given_by": consent.given_by,
            "basis": consent.basis,
            "at": _iso(consent.at),
        }
        self._save()

    def people(self) -> dict[str, str | None]:
        return {pid: p.get("name") for pid, p in self._data["people"].items()}

    def encodings(self) -> list[StoredEncoding]:
        return [
            StoredEncoding(pid, bundles.decode_encoding(e["b64"]), e["image_sha256"], e["source"])
            for pid, person in self._data["people"].items()
            for e in person["encodings"]
        ]

    def add(
        self,
        encoding: StoredEncoding,
        *,
        name: str | None,
        at: datetime,
        thumbnail: bytes | None = None,
        thumbnail_expires: datetime | None = None,
    ) -> None:
        person = self._data["people"].setdefault(
            encoding.person_id, {"name": name, "encodings": []}
        )
        if name:
            person["name"] = name
        person["encodings"].append(
            {
                "b64": bundles.encode_encoding(encoding.vector),
                "image_sha256": encoding.image_sha256,
                "source": encoding.source,
                "enrolled_at": _iso(at),
                "thumbnail_b64": base64.b64encode(thumbnail).decode() if thumbnail else None,
                "thumbnail_expires": _iso(thumbnail_expires) if thumbnail_expires else None,
            }
        )
        self._save()

    def erase(self, person_id: str, *, by: str, at: datetime) -> int:
        person = self._data["people"].pop(person_id, None)
        self._data["consents"].pop(person_id, None)
        removed = len(person["encodings"]) if person else 0
        self._data["erasures"].append({"person_id": person_id, "by": by, "at": _iso(at)})
        self._save()
        return removed

    def erased(self) -> list[str]:
        return [e["person_id"] for e in self._data["erasures"]]

    def publish(self, at: datetime) -> VersionInfo:
        version = len(self._data["versions"]) + 1
        data = make_bundle(self, version, at)
        self.bundle_dir.mkdir(parents=True, exist_ok=True)
        (self.bundle_dir / f"{version}.json").write_bytes(data)
        info = VersionInfo(version, bundles.sha256(data), len(data), at, secrets.token_urlsafe(24))
        self._data["versions"].append(
            {
                "version": version,
                "sha256": info.sha256,
                "size": info.size,
                "at": _iso(at),
                "token": info.token,
            }
        )
        self._save()
        return info

    def latest(self) -> VersionInfo | None:
        if not self._data["versions"]:
            return None
        v = self._data["versions"][-1]
        return VersionInfo(v["version"], v["sha256"], v["size"], _dt(v["at"]), v["token"])

    def version_info(self, version: int) -> VersionInfo:
        for v in self._data["versions"]:
            if v["version"] == version:
                return VersionInfo(v["version"], v["sha256"], v["size"], _dt(v["at"]), v["token"])
        raise NotFound(f"gallery version {version} not found")

    def bundle(self, version: int) -> bytes:
        path = self.bundle_dir / f"{int(version)}.json"
        if not path.is_file():
            raise NotFound(f"gallery version {version} not found")
        return path.read_bytes()

    def purge_thumbnails(self, now: datetime) -> int:
        purged = 0
        for person in self._data["people"].values():
            for enc in person["encodings"]:
                expires = enc.get("thumbnail_expires")
                if enc.get("thumbnail_b64") and expires and _dt(expires) <= now:
                    enc["thumbnail_b64"] = None
                    purged += 1
        if purged:
            self._save()
        return purged

    def thumbnails(self) -> int:
        return sum(
            1
            for person in self._data["people"].values()
            for enc in person["encodings"]
            if enc.get("thumbnail_b64")
        )

"""The gallery on SQLAlchemy (SQLite or PostgreSQL): :class:`DbGallery`."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any, cast

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import CursorResult, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cloud.auth import audit
from cloud.faces.store import Consent, NotFound, StoredEncoding, VersionInfo, make_bundle
from cloud.faces.tables import (
    FaceConsent,
    FaceEncoding,
    FaceErasure,
    FaceGalleryVersion,
    FacePerson,
)
from cloud.gate import changes
from edge.gate import bundle as bundles


def _info(row: FaceGalleryVersion) -> VersionInfo:
    return VersionInfo(row.version, row.sha256, row.size, row.created_at, row.token)


class DbGallery:
    """The cloud's gallery. Enrolment, consent and erasure are written to the audit log in the
    same transaction as the change; ``actor`` names who did it (the CLI passes the OS user)."""

    def __init__(self, engine: Engine, actor: str = audit.SYSTEM) -> None:
        self.engine = engine
        self.actor = actor
        self._session = sessionmaker(engine, expire_on_commit=False)

    def _s(self) -> Session:
        return self._session()

    def consent(self, person_id: str) -> Consent | None:
        with self._s() as s:
            row = s.get(FaceConsent, person_id)
            return None if row is None else Consent(row.person_id, row.given_by, row.basis, row.at)

    def record_consent(self, consent: Consent) -> None:
        with self._s() as s, s.begin():
            row = s.get(FaceConsent, consent.person_id)
            if row is None:
                s.add(
                    FaceConsent(
                        person_id=consent.person_id,
                        given_by=consent.given_by,
                        basis=consent.basis,
                        at=consent.at,
                    )
                )
            else:
                row.given_by, row.basis, row.at = consent.given_by, consent.basis, consent.at
            audit.record(
                s,
                self.actor,
                "face.consent",
                f"person:{consent.person_id}",
                {"given_by": consent.given_by, "basis": consent.basis},
            )

    def people(self) -> dict[str, str | None]:
        with self._s() as s:
            return {p.person_id: p.name for p in s.scalars(select(FacePerson))}

    def encodings(self) -> list[StoredEncoding]:
        with self._s() as s:
            rows = s.scalars(select(FaceEncoding).order_by(FaceEncoding.id))
            return [
                StoredEncoding(
                    r.person_id,
                    np.frombuffer(r.vector, dtype="<f4").astype(np.float32),
                    r.image_sha256,
                    r.source,
                )
                for r in rows
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
        vector = np.asarray(encoding.vector, dtype="<f4").tobytes()
        with self._s() as s, s.begin():
            person = s.get(FacePerson, encoding.person_id)
            if person is None:
                s.add(FacePerson(person_id=encoding.person_id, name=name, created_at=at))
                s.flush()
            elif name:
                person.name = name
            s.add(
                FaceEncoding(
                    person_id=encoding.person_id,
                    vector=vector,
                    image_sha256=encoding.image_sha256,
                    source=encoding.source[:255],
                    enrolled_at=at,
                    thumbnail=thumbnail,
                    thumbnail_expires=thumbnail_expires,
                )
            )
            audit.record(
                s,
                self.actor,
                "face.enrol",
                f"person:{encoding.person_id}",
                {"source": encoding.source[:255], "image_sha256": encoding.image_sha256},
            )

    def erase(self, person_id: str, *, by: str, at: datetime) -> int:
        with self._s() as s, s.begin():
            deleted = s.execute(delete(FaceEncoding).where(FaceEncoding.person_id == person_id))
            removed = int(cast(CursorResult[Any], deleted).rowcount)
            s.execute(delete(FacePerson).where(FacePerson.person_id == person_id))
            s.execute(delete(FaceConsent).where(FaceConsent.person_id == person_id))
            s.add(FaceErasure(person_id=person_id, by=by, at=at, encodings_removed=removed))
            audit.record(s, by, "face.erase", f"person:{person_id}", {"encodings": removed})
            return int(removed)

    def erased(self) -> list[str]:
        with self._s() as s:
            return list(s.scalars(select(FaceErasure.person_id).distinct()))

    def publish(self, at: datetime) -> VersionInfo:
        for _attempt in range(3):
            with self._s() as s:
                current = s.scalar(select(func.max(FaceGalleryVersion.version))) or 0
            version = current + 1
            data = make_bundle(self, version, at)
            info = VersionInfo(
                version, bundles.sha256(data), len(data), at, secrets.token_urlsafe(24)
            )
            try:
                with self._s() as s, s.begin():
                    s.add(
                        FaceGalleryVersion(
                            version=version,
                            sha256=info.sha256,
                            size=info.size,
                            token=info.token,
                            created_at=at,
                            data=data,
                        )
                    )
                    changes.announce(s, None)  # every gateway of every site needs it
            except IntegrityError:
                continue  # another publisher took this version number: build the next one
            return info
        raise RuntimeError("could not allocate a gallery version (concurrent publishers)")

    def latest(self) -> VersionInfo | None:
        with self._s() as s:
            row = s.scalars(
                select(FaceGalleryVersion).order_by(FaceGalleryVersion.version.desc()).limit(1)
            ).first()
            return None if row is None else _info(row)

    def version_info(self, version: int) -> VersionInfo:
        with self._s() as s:
            row = s.get(FaceGalleryVersion, version)
            if row is None:
                raise NotFound(f"gallery version {version} not found")
            return _info(row)

    def bundle(self, version: int) -> bytes:
        with self._s() as s:
            data = s.scalar(
                select(FaceGalleryVersion.data).where(FaceGalleryVersion.version == version)
            )
        if data is None:
            raise NotFound(f"gallery version {version} not found")
        return bytes(data)

    def purge_thumbnails(self, now: datetime) -> int:
        with self._s() as s, s.begin():
            result = s.execute(
                update(FaceEncoding)
                .where(FaceEncoding.thumbnail.is_not(None))
                .where(FaceEncoding.thumbnail_expires <= now)
                .values(thumbnail=None)
            )
            return int(cast(CursorResult[Any], result).rowcount)

    def thumbnails(self) -> int:
        with self._s() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(FaceEncoding)
                    .where(FaceEncoding.thumbnail.is_not(None))
                )
                or 0
            )

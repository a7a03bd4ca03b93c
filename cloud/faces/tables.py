"""Gallery tables: ``face_persons``, ``face_encodings``, ``face_consents``,
``face_gallery_versions`` and ``face_erasures``.

No photo is stored: an encoding row keeps the 128 float32 values, the photo's SHA-256 (to detect
duplicates) and an optional small thumbnail with its expiry (retention policy).
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from cloud.db import Base


class _UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite returns naive ones otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store aware UTC times only")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class FacePerson(Base):
    __tablename__ = "face_persons"

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_UtcDateTime)


class FaceEncoding(Base):
    __tablename__ = "face_encodings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(
        ForeignKey("face_persons.person_id", ondelete="CASCADE"), index=True
    )
    vector: Mapped[bytes] = mapped_column(LargeBinary(512))
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    source: Mapped[str] = mapped_column(String(255))
    enrolled_at: Mapped[datetime] = mapped_column(_UtcDateTime)
    thumbnail: Mapped[bytes | None] = mapped_column(LargeBinary)
    thumbnail_expires: Mapped[datetime | None] = mapped_column(_UtcDateTime)


class FaceConsent(Base):
    __tablename__ = "face_consents"

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    given_by: Mapped[str] = mapped_column(String(128))
    basis: Mapped[str] = mapped_column(String(255))
    at: Mapped[datetime] = mapped_column(_UtcDateTime)


class FaceGalleryVersion(Base):
    __tablename__ = "face_gallery_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(_UtcDateTime)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class FaceErasure(Base):
    __tablename__ = "face_erasures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(String(64), index=True)
    by: Mapped[str] = mapped_column(String(128))
    at: Mapped[datetime] = mapped_column(_UtcDateTime)
    encodings_removed: Mapped[int] = mapped_column(Integer)

"""Enrolment: photos → one good face each → encoding stored with consent; and verification.

Rules: exactly one face of good quality per photo (else a per-file error naming the reason);
the same photo (by SHA-256) or a near-identical face (distance < ``DUPLICATE_DISTANCE``) is a
duplicate; a face that matches a *different* enrolled person is refused unless allowed; nobody
is enrolled without a consent record (given now with ``consent_by``, or recorded before).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from cloud.faces.store import Consent, GalleryStore, StoredEncoding
from edge.gate.errors import ImageError
from edge.gate.events import thumbnail_jpeg
from edge.gate.faces import RGB, Face, FaceEngine, Vec, load_rgb
from edge.gate.matching import DEFAULT_THRESHOLD, Gallery
from edge.gate.quality import QualityConfig, assess
from protocols.ids import ID_PATTERN

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
DUPLICATE_DISTANCE = 0.15
"""Below this, two encodings come from the same photo (resized/recompressed), not two photos."""
ENROL_QUALITY = QualityConfig(min_face_px=80, max_yaw=0.35)
MAX_SIDE = 800
THUMBNAIL_RETENTION = timedelta(days=30)


def person_id_from(path: Path) -> str:
    """``lin_manuel_miranda_1.png`` → ``lin_manuel_miranda`` (a trailing ``_N`` is dropped)."""
    stem = re.sub(r"[_\-]\d+$", "", path.stem)
    ident = re.sub(r"[^A-Za-z0-9_.\-]", "_", stem).strip("_.-").lower() or "person"
    return ident[:64] if ID_PATTERN.fullmatch(ident[:64]) else f"p_{ident}"[:64]


def image_files(paths: Iterable[Path]) -> list[Path]:
    """Files given, plus image files inside given directories (sorted)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out


def faces_in(engine: FaceEngine, rgb: RGB, *, upsample: int = 1) -> list[Face]:
    """All faces, detected on a copy no larger than 800 px (enrolment photos are large)."""
    scale = min(1.0, MAX_SIDE / max(rgb.shape[:2]))
    return engine.faces(rgb, scale=scale, upsample=upsample)


def encode_one(
    engine: FaceEngine, path: Path, quality: QualityConfig = ENROL_QUALITY, jitters: int = 1
) -> tuple[Vec, RGB, Face]:
    """The encoding of the one good face in ``path``; :class:`ImageError` otherwise."""
    rgb = load_rgb(path)
    found = faces_in(engine, rgb)
    if not found:
        raise ImageError(str(path), "no_face", "no face found")
    if len(found) > 1:
        raise ImageError(str(path), "several_faces", f"{len(found)} faces; exactly one needed")
    face = found[0]
    q = assess(rgb, face, quality)
    if not q.ok:
        raise ImageError(
            str(path),
            q.reason or "quality",
            f"face rejected ({q.reason}: size {q.size}px, sharpness {q.sharpness}, "
            f"yaw {q.yaw}, pitch {q.pitch})",
        )
    return engine.encode(rgb, face, jitters=jitters), rgb, face


@dataclass(frozen=True, slots=True)
class EnrolResult:
    path: Path
    person_id: str
    ok: bool
    reason: str
    detail: str = ""


def enrol(
    engine: FaceEngine,
    store: GalleryStore,
    files: Iterable[Path],
    *,
    at: datetime,
    consent_by: str | None = None,
    consent_basis: str = "written consent",
    person_id: str | None = None,
    name: str | None = None,
    allow_similar: bool = False,
    threshold: float = DEFAULT_THRESHOLD,
    thumbnail_retention: timedelta | None = THUMBNAIL_RETENTION,
) -> Iterator[EnrolResult]:
    """Enrol each file; yields one result per file (never raises for a bad file)."""
    existing = store.encodings()
    hashes = {e.image_sha256: e.person_id for e in existing}
    gallery = Gallery([e.person_id for e in existing], [e.vector for e in existing])
    for path in files:
        pid = person_id or person_id_from(path)
        consent = store.consent(pid)
        if consent is None and consent_by is None:
            yield EnrolResult(path, pid, False, "no_consent", "no consent recorded: pass --consent")
            continue
        try:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        except OSError as exc:
            yield EnrolResult(path, pid, False, "unreadable", str(exc))
            continue
        if digest in hashes:
            yield EnrolResult(path, pid, False, "duplicate", f"same photo as {hashes[digest]}")
            continue
        try:
            vector, rgb, face = encode_one(engine, path)
        except ImageError as exc:
            yield EnrolResult(path, pid, False, exc.reason, exc.detail)
            continue
        result = _check_similar(gallery, vector, pid, path, threshold, allow_similar)
        if result is not None:
            yield result
            continue
        if consent is None and consent_by is not None:
            store.record_consent(Consent(pid, consent_by, consent_basis, at))
        thumb = thumbnail_jpeg(rgb, face.box) if thumbnail_retention is not None else None
        expires = at + thumbnail_retention if thumbnail_retention is not None else None
        store.add(
            StoredEncoding(pid, vector, digest, path.name),
            name=name,
            at=at,
            thumbnail=thumb,
            thumbnail_expires=expires,
        )
        hashes[digest] = pid
        gallery = Gallery([*gallery.person_ids, pid], np.vstack([gallery.matrix, vector[None]]))
        yield EnrolResult(path, pid, True, "enrolled")


def _check_similar(
    gallery: Gallery, vector: Vec, pid: str, path: Path, threshold: float, allow_similar: bool
) -> EnrolResult | None:
    if not len(gallery):
        return None
    d = gallery.distances(vector)
    best = int(np.argmin(d))
    nearest, dist = gallery.person_ids[best], float(d[best])
    if dist < DUPLICATE_DISTANCE:
        return EnrolResult(
            path, pid, False, "duplicate", f"same face as an encoding of {nearest} ({dist:.3f})"
        )
    if nearest != pid and dist <= threshold and not allow_similar:
        return EnrolResult(
            path,
            pid,
            False,
            "similar_to_other",
            f"looks like enrolled {nearest} (distance {dist:.3f}); --allow-similar to enrol",
        )
    return None

"""Gallery stores (JSON file, SQLite, PostgreSQL): versions, erasure, consent, retention."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from cloud.db import create_schema, make_engine
from cloud.faces.dbstore import DbGallery
from cloud.faces.store import Consent, FileGallery, GalleryStore, NotFound, StoredEncoding, Vector
from edge.gate import bundle as bundles
from edge.gate.errors import GalleryError
from linli.services import Postgres

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
_counter = itertools.count()


@pytest.fixture(params=["file", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GalleryStore]:
    if request.param == "file":
        yield FileGallery(tmp_path / "gallery.json")
        return
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'linli.db'}"
    else:
        server: Postgres = request.getfixturevalue("postgres")
        url = server.create_database(f"faces_{os.getpid()}_{next(_counter)}")
    engine = make_engine(url)
    create_schema(engine)
    yield DbGallery(engine)
    engine.dispose()


def vec(seed: int) -> Vector:
    return np.random.default_rng(seed).normal(0, 0.1, 128).astype(np.float32)


def add(store: GalleryStore, pid: str, seed: int, **kw: object) -> None:
    store.add(
        StoredEncoding(pid, vec(seed), f"sha-{pid}-{seed}", f"{pid}.jpg"),
        name=pid.title(),
        at=T0,
        **kw,  # type: ignore[arg-type]
    )


def test_publish_versions_and_hash(store: GalleryStore) -> None:
    add(store, "alice", 1)
    add(store, "alice", 2)
    add(store, "bob", 3)
    v1 = store.publish(T0)
    data = store.bundle(1)
    assert v1.version == 1 and v1.sha256 == bundles.sha256(data) and v1.size == len(data)
    parsed = bundles.parse(data, expected_sha256=v1.sha256)
    assert {p.person_id: len(p.encodings) for p in parsed.people} == {"alice": 2, "bob": 1}
    gallery = parsed.gallery()
    assert gallery.match(vec(3)).person_id == "bob"
    np.testing.assert_array_equal(gallery.matrix[gallery.person_ids.index("bob")], vec(3))
    v2 = store.publish(T0 + timedelta(minutes=1))
    assert v2.version == 2 and store.latest() == v2
    assert store.version_info(1).token != v2.token
    with pytest.raises(NotFound):
        store.bundle(3)


def test_erasure_reaches_the_next_version(store: GalleryStore) -> None:
    add(store, "alice", 1)
    add(store, "bob", 2)
    store.record_consent(Consent("bob", "desk", "written", T0))
    store.publish(T0)
    assert store.erase("bob", by="dpo", at=T0 + timedelta(hours=1)) == 1
    v2 = store.publish(T0 + timedelta(hours=1))
    before = bundles.parse(store.bundle(1))
    after = bundles.parse(store.bundle(v2.version), expected_sha256=v2.sha256)
    assert "bob" in before.gallery().people
    assert after.gallery().people == frozenset({"alice"})
    assert after.erased == ("bob",)
    assert after.gallery().match(vec(2)).person_id is None
    assert store.consent("bob") is None and "bob" not in store.people()
    add(store, "bob", 5)  # re-enrolled later (with new consent): present, no longer "erased"
    v3 = bundles.parse(store.bundle(store.publish(T0 + timedelta(days=1)).version))
    assert v3.erased == () and "bob" in v3.gallery().people


def test_consent_recorded(store: GalleryStore) -> None:
    assert store.consent("alice") is None
    store.record_consent(Consent("alice", "front desk", "signed form 12", T0))
    c = store.consent("alice")
    assert c is not None and (c.given_by, c.basis, c.at) == ("front desk", "signed form 12", T0)


def test_thumbnails_expire_by_retention(store: GalleryStore) -> None:
    add(store, "alice", 1, thumbnail=b"\xff\xd8jpeg", thumbnail_expires=T0 + timedelta(days=30))
    add(store, "bob", 2, thumbnail=b"\xff\xd8jpeg", thumbnail_expires=T0 + timedelta(days=60))
    assert store.thumbnails() == 2
    assert store.purge_thumbnails(T0 + timedelta(days=29)) == 0
    assert store.purge_thumbnails(T0 + timedelta(days=31)) == 1
    assert store.thumbnails() == 1
    assert len(store.encodings()) == 2  # encodings stay; only the picture goes


def test_bundle_hash_mismatch_is_refused() -> None:
    b = bundles.build(1, T0, {"a": (None, [vec(1)])})
    data = b.to_bytes()
    with pytest.raises(GalleryError, match="hash mismatch"):
        bundles.parse(data, expected_sha256="0" * 64)
    with pytest.raises(GalleryError, match="malformed"):
        bundles.parse(b'{"format": "linli.gallery/1", "version": 0}')


def test_db_gallery_audits_consent_enrolment_and_erasure(tmp_path: Path) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from cloud.auth.tables import AuditEntry

    engine = make_engine(f"sqlite:///{tmp_path / 'audit.db'}")
    create_schema(engine)
    store = DbGallery(engine, actor="cli:operator")
    at = datetime(2026, 11, 27, tzinfo=UTC)
    store.record_consent(Consent("p1", "p1 in person", "written", at))
    store.add(
        StoredEncoding("p1", np.zeros(128, np.float32), "ab" * 32, "p1.jpg"), name="P1", at=at
    )
    store.erase("p1", by="manager1", at=at)
    with Session(engine) as s:
        rows = [(e.actor, e.action, e.target) for e in s.scalars(select(AuditEntry))]
    assert rows == [
        ("cli:operator", "face.consent", "person:p1"),
        ("cli:operator", "face.enrol", "person:p1"),
        ("manager1", "face.erase", "person:p1"),
    ]
    engine.dispose()

"""/api/faces routes: a bundle needs its version's token; unknown versions are 404."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cloud.faces.router import router
from cloud.faces.store import FileGallery, StoredEncoding
from edge.gate.bundle import parse

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def test_bundle_route(tmp_path: Path) -> None:
    store = FileGallery(tmp_path / "g.json")
    store.add(StoredEncoding("alice", np.ones(128, np.float32), "h", "a.jpg"), name="A", at=T0)
    info = store.publish(T0)
    app = FastAPI()
    app.include_router(router)
    app.state.faces_store = store
    client = TestClient(app)
    ok = client.get(f"/api/faces/gallery/1?token={info.token}")
    assert ok.status_code == 200
    assert ok.headers["x-linli-sha256"] == info.sha256
    assert parse(ok.content, expected_sha256=info.sha256).names() == {"alice": "A"}
    assert client.get("/api/faces/gallery/1?token=wrong").status_code == 403
    assert client.get("/api/faces/gallery/1").status_code == 403
    assert client.get(f"/api/faces/gallery/2?token={info.token}").status_code == 404

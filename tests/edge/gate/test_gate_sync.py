"""gallery.sync end to end: cloud publishes → API serves the bundle → edge verifies and swaps.

A real uvicorn server on 127.0.0.1 serves ``cloud.faces.router``; the edge handler fetches
over HTTP. Erasure of a person reaches the edge on the next version.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI

from cloud.db import create_schema, make_engine
from cloud.faces.dbstore import DbGallery
from cloud.faces.router import router
from cloud.faces.store import StoredEncoding, Vector
from cloud.faces.sync import sync_command
from edge.commands import CommandRegistry
from edge.errors import CommandFailed, CommandRefused
from edge.gate.bundle import Bundle
from edge.gate.matching import Gallery
from edge.gate.sync import GallerySync
from protocols.messages import AttrValue, Command

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def vec(seed: int) -> Vector:
    return np.random.default_rng(seed).normal(0, 0.1, 128).astype(np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[tuple[DbGallery, str]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'cloud.db'}")
    create_schema(engine)
    store = DbGallery(engine)
    app = FastAPI()
    app.include_router(router)
    app.state.faces_store = store
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield store, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


async def _call(
    handler: Callable[[Command], Awaitable[Mapping[str, AttrValue]]], command: Command
) -> Mapping[str, AttrValue]:
    return await handler(command)


class Edge:
    def __init__(self) -> None:
        self.gallery = Gallery([], np.zeros((0, 128)))
        self.applied: list[int] = []

    def apply(self, bundle: Bundle) -> None:
        self.gallery = bundle.gallery()
        self.applied.append(bundle.version)


def test_sync_verifies_hash_and_erasure_reaches_the_edge(
    cloud: tuple[DbGallery, str], tmp_path: Path
) -> None:
    store, base = cloud
    for pid, seed in (("alice", 1), ("bob", 2)):
        store.add(StoredEncoding(pid, vec(seed), f"h{seed}", f"{pid}.jpg"), name=None, at=T0)
    v1 = store.publish(T0)
    edge = Edge()
    sync = GallerySync(tmp_path / "edge" / "gallery.json", edge.apply)
    registry = CommandRegistry()
    registry.register("gallery.sync", sync.handle)
    registered = registry.get("gallery.sync")
    assert registered is not None

    def handler(command: Command) -> Mapping[str, AttrValue]:
        assert registered is not None
        return asyncio.run(_call(registered, command))

    result = handler(sync_command(v1, base, now=T0))
    assert result["changed"] is True and result["version"] == 1.0
    assert edge.gallery.match(vec(2)).person_id == "bob"

    store.erase("bob", by="dpo", at=T0 + timedelta(hours=1))
    v2 = store.publish(T0 + timedelta(hours=1))
    result = handler(sync_command(v2, base, now=T0))
    assert result["erased"] == 1.0
    assert edge.gallery.match(vec(2)).person_id is None
    assert edge.gallery.match(vec(1)).person_id == "alice"

    # Replaying an old command changes nothing; a reboot loads the verified copy.
    assert (handler(sync_command(v1, base, now=T0)))["changed"] is False
    rebooted = Edge()
    cached = GallerySync(tmp_path / "edge" / "gallery.json", rebooted.apply).load_cached()
    assert cached is not None and cached.version == 2 and rebooted.gallery.people == {"alice"}


def test_tampered_hash_or_token_fails_and_keeps_the_gallery(
    cloud: tuple[DbGallery, str], tmp_path: Path
) -> None:
    store, base = cloud
    store.add(StoredEncoding("alice", vec(1), "h1", "a.jpg"), name=None, at=T0)
    info = store.publish(T0)
    edge = Edge()
    sync = GallerySync(tmp_path / "g.json", edge.apply)
    with pytest.raises(CommandFailed, match="hash mismatch"):
        asyncio.run(sync.handle(sync_command(replace(info, sha256="ab" * 32), base, now=T0)))
    with pytest.raises(CommandFailed, match="403"):
        asyncio.run(sync.handle(sync_command(replace(info, token="guess"), base, now=T0)))
    assert edge.applied == [] and sync.version == 0 and not (tmp_path / "g.json").exists()


def test_bad_params_are_refused(tmp_path: Path) -> None:
    sync = GallerySync(tmp_path / "g.json", Edge().apply)
    command = Command(
        cmd_id="c" * 16,
        name="gallery.sync",
        params={"version": 3.0, "sha256": "short", "url": "http://x"},
        issued_at=T0,
        expires_at=T0 + timedelta(hours=1),
    )
    with pytest.raises(CommandRefused, match="sha256"):
        asyncio.run(sync.handle(command))

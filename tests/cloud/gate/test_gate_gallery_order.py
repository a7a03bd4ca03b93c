"""The edge's ``gallery.sync`` handler never lets an older version replace a newer one, even
when the older command is still fetching while the newer one completes (a re-sent or late
command on a loaded gateway)."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from edge.gate import bundle as bundles
from edge.gate.sync import GallerySync
from protocols.codec import new_id
from protocols.messages import Command

pytestmark = pytest.mark.anyio
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def data(version: int, people: list[str]) -> bytes:
    made = bundles.build(version, NOW, {p: (None, [np.ones(128, np.float32)]) for p in people})
    return made.model_dump_json().encode()


def command(version: int, body: bytes) -> Command:
    params = {
        "version": float(version),
        "sha256": bundles.sha256(body),
        "url": f"http://x/{version}",
    }
    return Command(
        cmd_id=new_id(),
        name="gallery.sync",
        params=params,
        issued_at=NOW,
        expires_at=datetime(2099, 1, 1, tzinfo=UTC),
    )


async def test_an_older_sync_finishing_last_does_not_win(tmp_path: Path) -> None:
    v1, v2 = data(1, ["obama", "biden"]), data(2, ["biden"])
    v1_fetching, release_v1 = threading.Event(), threading.Event()

    def fetch(url: str) -> bytes:
        if url.endswith("/1"):
            v1_fetching.set()
            release_v1.wait(10)  # v1's fetch is slow …
            return v1
        return v2

    installed: list[int] = []
    sync = GallerySync(tmp_path / "gallery.json", lambda b: installed.append(b.version), fetch)
    first = asyncio.create_task(sync.handle(command(1, v1)))
    await asyncio.to_thread(v1_fetching.wait, 10)
    second = asyncio.create_task(sync.handle(command(2, v2)))
    await asyncio.sleep(0.3)  # … v2 arrives meanwhile
    release_v1.set()
    await asyncio.gather(first, second)
    assert sync.version == 2 and installed[-1] == 2
    assert bundles.parse((tmp_path / "gallery.json").read_bytes()).version == 2

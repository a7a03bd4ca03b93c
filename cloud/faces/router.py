"""``/api/faces``: gallery bundles for edges, and the latest version for staff.

``GET /api/faces/gallery/{version}?token=…`` serves a published bundle's exact bytes (the edge
checks their SHA-256 from the ``gallery.sync`` command). Gateways have no user session, so
this route is public but needs the version's capability token, which only travels inside the
``gallery.sync`` command. ``GET /api/faces/gallery`` (staff) describes the latest version.

The router's lifespan runs :class:`cloud.gate.sync.GateSync` beside the app when it has an MQTT
publisher: each new gallery version and each change of the visitor passes (issued, revoked,
used) reaches every gateway, re-sent until acknowledged. It chains the sync's hook after the
app's ingest ``on_stored`` hook, so a stored visitor pass grant is recorded at once. Gateways
fetch bundles from ``LINLI_GATE_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Response
from pydantic import AwareDatetime, BaseModel
from starlette.requests import HTTPConnection

from cloud.api.params import BIGINT_MAX
from cloud.auth.deps import Staff, public
from cloud.faces.dbstore import DbGallery
from cloud.faces.store import GalleryStore, NotFound

if TYPE_CHECKING:
    from cloud.gate.sync import GateSync

GalleryVersion = Annotated[int, Path(ge=0, le=BIGINT_MAX)]
log = logging.getLogger(__name__)
GATE_URL_ENV = "LINLI_GATE_URL"
"""The cloud's base URL as gateways reach it (for the gallery bundle URL in gallery.sync)."""
POLL_STATE = "gate_poll_s"
"""``app.state.gate_poll_s``: the gate sync's safety poll, if not :data:`DEFAULT_POLL_S`."""
DEFAULT_POLL_S = 60.0


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the gallery/passes sync while the app runs (needs the app's MQTT publisher).

    One process of a deployment runs it: role ``all``, or the rules process of shard 0. An
    ingest-only process (a shared-group member) instead forwards the stored messages the sync
    acts on by PostgreSQL NOTIFY.
    """
    services = getattr(app.state, "services", None)
    publisher = getattr(services, "publisher", None)
    if services is None or publisher is None:
        yield
        return
    from cloud.gate import changes
    from cloud.gate.sync import GateSync  # imports dashboards' tables: only when it runs

    settings = services.settings
    ingest = services.ingest
    if settings.role == "ingest" or (settings.role == "rules" and settings.shard_index != 0):
        remove = None
        if ingest is not None and services.engine.dialect.name == "postgresql":
            remove = ingest.also_notify(changes.stored_hook(services.engine))
        try:
            yield
        finally:
            if remove is not None:
                remove()
        return
    base_url = os.environ.get(GATE_URL_ENV) or None
    if base_url is None:
        log.info("%s not set: gallery.sync is off (visitor passes still sync)", GATE_URL_ENV)
    store = getattr(app.state, "faces_store", None) or DbGallery(services.engine)
    poll_s = getattr(app.state, POLL_STATE, None) or DEFAULT_POLL_S
    sync = GateSync(services.sessions, publisher, store, base_url, poll_s=poll_s)
    app.state.gate_sync = sync
    # a stored visitor pass grant wakes the sync (it records the use)
    remove = None if ingest is None else ingest.also_notify(sync.on_stored)
    task = asyncio.create_task(_supervised(sync), name="gate-sync")
    try:
        yield
    finally:
        if remove is not None:
            remove()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


RETRY_S = 5.0


async def _supervised(sync: GateSync) -> None:
    while True:
        try:
            await sync.run()
        except Exception:  # a supervisor boundary: a bad round must not end the sync
            log.exception("gate sync round failed; again in %.0fs", RETRY_S)
            await asyncio.sleep(RETRY_S)


router = APIRouter(prefix="/api/faces", tags=["faces"], lifespan=lifespan)


def gallery_store(conn: HTTPConnection) -> GalleryStore:
    """``app.state.faces_store`` if set, else the database gallery on ``app.state.engine``."""
    store: GalleryStore | None = getattr(conn.app.state, "faces_store", None)
    if store is not None:
        return store
    engine = getattr(conn.app.state, "engine", None)
    if engine is None:
        raise RuntimeError("no faces_store or engine on app.state (lifespan not started?)")
    return DbGallery(engine)


Store = Annotated[GalleryStore, Depends(gallery_store)]


class GalleryVersionOut(BaseModel):
    version: int
    sha256: str
    size: int
    created_at: AwareDatetime


@router.get("/gallery", response_model=GalleryVersionOut)
def latest_version(store: Store, _user: Staff) -> GalleryVersionOut:
    info = store.latest()
    if info is None:
        raise HTTPException(404, "no gallery version published yet")
    return GalleryVersionOut(
        version=info.version, sha256=info.sha256, size=info.size, created_at=info.created_at
    )


@router.get(
    "/gallery/{version}",
    dependencies=[Depends(public)],
    responses={200: {"content": {"application/json": {}}}, 403: {}, 404: {}},
)
def gallery_bundle(
    version: GalleryVersion, store: Store, token: Annotated[str, Query(max_length=128)] = ""
) -> Response:
    try:
        info = store.version_info(version)
        data = store.bundle(version)
    except NotFound:
        raise HTTPException(404, f"gallery version {version} not found") from None
    if not token or not secrets.compare_digest(token, info.token):
        raise HTTPException(403, "missing or wrong gallery token")
    return Response(
        data,
        media_type="application/json",
        headers={"X-Linli-SHA256": info.sha256, "Cache-Control": "no-store"},
    )

"""The ``gallery.sync`` command the cloud sends each gateway after publishing a version."""

from __future__ import annotations

from datetime import datetime, timedelta

from cloud.faces.store import VersionInfo
from protocols.codec import new_id
from protocols.messages import Command

COMMAND = "gallery.sync"


def bundle_url(base_url: str, info: VersionInfo) -> str:
    return f"{base_url.rstrip('/')}/api/faces/gallery/{info.version}?token={info.token}"


def sync_command(
    info: VersionInfo,
    base_url: str,
    *,
    now: datetime,
    ttl: timedelta = timedelta(hours=24),
    issued_by: str | None = None,
) -> Command:
    """``gallery.sync`` with version, sha256 and where to fetch; the edge verifies the hash."""
    return Command(
        cmd_id=new_id(),
        name=COMMAND,
        params={
            "version": float(info.version),
            "sha256": info.sha256,
            "url": bundle_url(base_url, info),
        },
        issued_at=now,
        expires_at=now + ttl,
        issued_by=issued_by,
    )

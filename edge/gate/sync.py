"""``gallery.sync``: fetch a gallery bundle, verify its SHA-256, swap it in, keep a copy.

The command's params: ``version`` (int), ``sha256`` (hex) and ``url`` (where to fetch, e.g.
``https://cloud/api/faces/gallery/7``). An older or equal version is acknowledged without
fetching; a hash mismatch is a failure and the running gallery stays as it was.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from edge.errors import CommandFailed, CommandRefused
from edge.gate import bundle as bundles
from edge.gate.errors import GalleryError
from protocols.messages import AttrValue, Command

log = logging.getLogger(__name__)
MAX_BUNDLE_BYTES = 256 * 1024 * 1024
Fetch = Callable[[str], bytes]
Apply = Callable[[bundles.Bundle], None]


def http_fetch(url: str, timeout: float = 30.0, headers: Mapping[str, str] | None = None) -> bytes:
    if not url.startswith(("http://", "https://")):
        raise GalleryError(f"refusing to fetch {url!r}: only http(s) URLs")
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data: bytes = response.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        raise GalleryError(f"gallery bundle larger than {MAX_BUNDLE_BYTES} bytes")
    return data


class GallerySync:
    """Holds the current bundle; ``apply`` is called with each new verified bundle."""

    def __init__(self, cache: Path, apply: Apply, fetch: Fetch = http_fetch) -> None:
        self.cache = cache
        self.apply = apply
        self.fetch = fetch
        self.version = 0
        self.sha256: str | None = None
        self._lock = threading.Lock()
        """Commands run concurrently (a slow fetch must not hold up a door command): the
        version check and the install happen together, so an older bundle fetched last cannot
        replace a newer one."""

    def load_cached(self) -> bundles.Bundle | None:
        """Apply the bundle kept from the last sync (so a reboot does not wait for the cloud)."""
        if not self.cache.is_file():
            return None
        data = self.cache.read_bytes()
        try:
            bundle = bundles.parse(data)
        except GalleryError as exc:
            log.error("cached gallery %s unusable: %s", self.cache, exc)
            return None
        self._install(bundle, data)
        return bundle

    def _install(self, bundle: bundles.Bundle, data: bytes) -> None:
        self.apply(bundle)
        self.version = bundle.version
        self.sha256 = bundles.sha256(data)

    def sync(self, version: int, sha256: str, url: str) -> Mapping[str, AttrValue]:
        if version <= self.version:
            return {"version": float(self.version), "changed": False}
        data = self.fetch(url)
        bundle = bundles.parse(data, expected_sha256=sha256)
        if bundle.version != version:
            raise GalleryError(f"bundle holds version {bundle.version}, command said {version}")
        with self._lock:
            if version <= self.version:  # a newer one was installed while this one was fetched
                return {"version": float(self.version), "changed": False}
            # Saved before it is swapped in: whoever sees the new version (a test, an operator,
            # the cloud's acknowledgement) may rely on a reboot keeping it.
            self._save(data)
            self._install(bundle, data)
        log.info("gallery version %d installed (%d people)", version, len(bundle.people))
        return {
            "version": float(version),
            "changed": True,
            "people": float(len(bundle.people)),
            "erased": float(len(bundle.erased)),
        }

    def _save(self, data: bytes) -> None:
        self.cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.cache.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.cache)

    async def handle(self, command: Command) -> Mapping[str, AttrValue]:
        """The edge agent's command handler: ``registry.register("gallery.sync", s.handle)``."""
        params = command.params
        version, sha256, url = params.get("version"), params.get("sha256"), params.get("url")
        if not isinstance(version, int | float) or isinstance(version, bool) or version < 1:
            raise CommandRefused("gallery.sync needs params.version ≥ 1")
        if not isinstance(sha256, str) or len(sha256) != 64:
            raise CommandRefused("gallery.sync needs params.sha256 (64 hex characters)")
        if not isinstance(url, str) or not url:
            raise CommandRefused("gallery.sync needs params.url")
        try:
            return await asyncio.to_thread(self.sync, int(version), sha256, url)
        except (GalleryError, OSError) as exc:
            raise CommandFailed(f"gallery.sync: {exc}") from exc

"""What the rule evaluator asks about a device: kind, zone, building and tags.

Kind and location come from the registry's approval cache (:meth:`Registry.lookup`, None for a
device that is unknown, pending or rejected). Tags come from the device's ``attrs`` in the
registry: every attribute set to ``true`` (``living_alone: true``) and the names listed under
``tags``. They are read once per device, then refreshed by :meth:`RegistryLookup.refresh`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cloud.registry.service import Registry
from cloud.registry.tables import Device
from protocols.rules.observations import DeviceInfo

log = logging.getLogger(__name__)

TAG = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")
NO_TAGS: frozenset[str] = frozenset()


def tags_of(attrs: Mapping[str, Any] | None) -> frozenset[str]:
    """``{living_alone: true, tags: [evacuation]}`` → ``{"living_alone", "evacuation"}``."""
    if not attrs:
        return NO_TAGS
    found = {k for k, v in attrs.items() if v is True}
    listed = attrs.get("tags")
    if isinstance(listed, str):
        found.update(t.strip() for t in listed.split(","))
    elif isinstance(listed, list | tuple):
        found.update(str(t) for t in listed)
    return frozenset(t for t in found if TAG.match(t))


class RegistryLookup:
    """``lookup(site, device)`` for :func:`protocols.rules.observations_from`."""

    def __init__(self, registry: Registry, sessions: sessionmaker[Session]) -> None:
        self.registry = registry
        self.sessions = sessions
        self._tags: dict[tuple[str, str], frozenset[str]] = {}

    def __call__(self, site: str, device: str) -> DeviceInfo | None:
        found = self.registry.lookup(site, device)
        if found is None:
            return None
        tags = self._tags.get((site, device))
        if tags is None:
            tags = self._tags[(site, device)] = self._load_one(site, device)
        return DeviceInfo(found.kind, found.zone, found.building, tags)

    def _load_one(self, site: str, device: str) -> frozenset[str]:
        with self.sessions() as db:
            attrs = db.scalar(select(Device.attrs).where(Device.site == site, Device.id == device))
        return tags_of(attrs)

    def refresh(self) -> None:
        """Re-read every device's tags (attributes may change after a site import)."""
        with self.sessions() as db:
            rows = db.execute(select(Device.site, Device.id, Device.attrs)).all()
        self._tags = {(s, d): tags_of(a) for s, d, a in rows}

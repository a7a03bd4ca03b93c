"""Which sites are running a drill, for cloud.alerts (alerts raised there are marked ``drill``).

cloud.alerts does not import this package: it asks whatever :class:`~cloud.alerts.service.DrillMode`
was registered. :func:`install` registers :data:`DRILL_SITES` (the risk runtime does it at app
start). The answer is cached per database, so raising an alert costs no query: the cache is
dropped when this process starts or ends a drill (:func:`cloud.risk.drills.save`) and expires
after ``ttl_s`` so that a drill started by another cloud process (e.g. the rules run apart
from the API) is seen within that time.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from cloud.alerts import service as alerts
from cloud.risk.tables import Drill

CACHE_TTL_S = 5.0
"""How long the running drills are trusted without asking the database again."""


class DrillSites:
    """:class:`~cloud.alerts.service.DrillMode` from the ``risk_drills`` table, cached."""

    def __init__(
        self, ttl_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self.loads = 0
        """How many times the running drills were read (tests, metrics)."""
        self._lock = threading.Lock()
        self._generation = 0
        self._cache: weakref.WeakKeyDictionary[Engine, tuple[float, frozenset[str]]] = (
            weakref.WeakKeyDictionary()
        )

    def running(self, session: Session, site: str) -> bool:
        engine = session.get_bind().engine
        now = self.clock()
        with self._lock:
            cached = self._cache.get(engine)
            generation = self._generation
        if cached is None or now - cached[0] >= self.ttl_s:
            sites = frozenset(
                session.scalars(select(Drill.site).where(Drill.status == "running").distinct())
            )
            with self._lock:
                self.loads += 1
                if generation == self._generation:  # not invalidated while we were reading
                    self._cache[engine] = (now, sites)
            return site in sites
        return site in cached[1]

    def invalidate(self) -> None:
        """A drill started or ended: read again on the next question (after the commit)."""
        with self._lock:
            self._generation += 1
            self._cache.clear()


DRILL_SITES = DrillSites()


def install(provider: DrillSites = DRILL_SITES) -> DrillSites:
    """Make cloud.alerts mark the alerts of drilling sites (idempotent); returns the provider."""
    alerts.use_drill_mode(provider)
    provider.invalidate()
    return provider

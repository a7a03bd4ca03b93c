"""Risk governance tests reuse the governance fixtures: the real app on a fresh SQLite and
PostgreSQL database (``db_url``), a fake governance clock, organisations of one site."""

from __future__ import annotations

import pytest

from cloud.registry.sitefile import SiteFile
from tests.cloud.api.conftest import demo_site as _demo_site
from tests.cloud.governance.conftest import gov_app, make_cloud, sessions

__all__ = ["gov_app", "make_cloud", "sessions"]  # engine: tests/cloud/conftest.py


@pytest.fixture
def demo_site(site: str) -> SiteFile:
    """A building b1 with smoke-1, heat-1, door-1… of the API tests, under a fresh site id."""
    return _demo_site(site)

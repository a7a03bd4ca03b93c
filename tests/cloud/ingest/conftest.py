"""Fixtures for ingest tests: a database with the schema and a real publisher."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from linli.services import Mosquitto
from tests.cloud.ingest.ingest_support import Publisher


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(mosquitto.port)
    yield pub
    pub.close()

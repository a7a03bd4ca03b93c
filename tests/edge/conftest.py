"""Fixtures of the edge agent's tests (helpers live in edge/testing.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge.testing import Subscriber
from linli.services import Mosquitto
from protocols.topics import topic_filter


@pytest.fixture
def subscriber_for() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(broker: Mosquitto, site: str, **kw: Any) -> Subscriber:
        sub = Subscriber(broker, [topic_filter(None, site)], **kw)
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()

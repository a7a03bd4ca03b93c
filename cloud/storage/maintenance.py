"""The periodic storage job: retention, rollups, thumbnail expiry (a task in a TaskGroup)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cloud.storage.queries import RetentionResult, apply_retention

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    readings_days: float = 30
    dedup_days: float = 30
    dead_letter_days: float = 90


async def retention_forever(
    engine: Engine, policy: RetentionPolicy = RetentionPolicy(), every_s: float = 3600.0
) -> None:
    """Apply the retention policy now and then every ``every_s`` seconds until cancelled."""

    def once() -> RetentionResult:
        with Session(engine) as session, session.begin():
            return apply_retention(
                session,
                datetime.now(UTC),
                policy.readings_days,
                policy.dedup_days,
                policy.dead_letter_days,
            )

    while True:
        try:
            result = await asyncio.to_thread(once)
            log.info("retention: %s", result)
        except SQLAlchemyError as exc:
            log.warning("retention run failed (will retry): %s", exc)
        await asyncio.sleep(every_s)

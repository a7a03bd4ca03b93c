"""The notifier: a bounded queue of (channel, notice) and workers that deliver with retries.

Every delivery attempt's outcome lands in the alert's timeline (``notified`` /
``notify_failed``), so "did the fire brigade get the whistle?" is answered by the audit trail.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from cloud.alerts import service as alerts
from cloud.alerts.tables import Alert, Notification
from cloud.notify.channels import DeliveryError, Notice, post_json, send_email, send_webhook
from cloud.notify.hub import Hub
from cloud.notify.loop import LoopBound
from cloud.settings import Channel, EmailChannel, InAppChannel, WebhookChannel

log = logging.getLogger(__name__)

WHISTLE = "whistle"
USERS = "users"
"""The pseudo-channel of :meth:`Notifier.tell`: in-app notices to named users."""
PERSONAL = "personal"
"""The ``role`` of a notification addressed to one user (no role is called that)."""


@dataclass(frozen=True, slots=True)
class _Job:
    channel: str
    notice: Notice
    url: str | None = None  # the whistle's own URL
    users: tuple[str, ...] = ()  # USERS: who gets the in-app notice


class Notifier(LoopBound):
    def __init__(
        self,
        channels: dict[str, Channel],
        sessions: sessionmaker[Session],
        hub: Hub,
        *,
        whistle_url: str | None = None,
        queue_size: int = 1000,
        attempts: int = 3,
        backoff_s: float = 0.5,
        workers: int = 3,
    ) -> None:
        super().__init__()
        self.channels = channels
        self.sessions = sessions
        self.hub = hub
        self.whistle_url = whistle_url
        self.attempts = attempts
        self.backoff_s = backoff_s
        self.workers = workers
        self._queue: asyncio.Queue[_Job] = asyncio.Queue(queue_size)
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.dropped = 0

    def submit(self, channels: Iterable[str], notice: Notice) -> None:
        """Queue ``notice`` for each named channel; never blocks (a full queue drops, counted)."""
        for name in dict.fromkeys(channels):
            if name not in self.channels:
                log.warning(
                    "notice for unknown channel %r (alert %s) dropped", name, notice.alert_id
                )
                self.failed[name] += 1
                continue
            self._put(_Job(name, notice))

    def tell(self, users: Iterable[str], notice: Notice) -> None:
        """An in-app notice to each of ``users`` personally (a drill's participants), whatever
        their role — besides the role-based channels of :meth:`submit`."""
        named = tuple(dict.fromkeys(users))
        if named:
            self._put(_Job(USERS, notice, users=named))

    def whistle(self, notice: Notice) -> None:
        """Call the outside department's whistle webhook (critical alerts escalating)."""
        if self.whistle_url is None:
            return
        self._put(_Job(WHISTLE, notice, self.whistle_url))

    def _put(self, job: _Job) -> None:
        self._in_loop(lambda: self._put_now(job))

    def _put_now(self, job: _Job) -> None:
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error(
                "notification queue full: %s for alert %s dropped", job.channel, job.notice.alert_id
            )

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        """The workers; run inside the app's TaskGroup until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for i in range(self.workers):
                tg.create_task(self._worker(), name=f"notify-worker-{i}")

    async def _worker(self) -> None:
        while True:
            job = await self._queue.get()
            try:
                await self._deliver(job)
            finally:
                self._queue.task_done()

    async def join(self) -> None:
        """Wait until every queued notice was delivered or given up (tests, shutdown)."""
        await self._queue.join()

    def _drill_of(self, alert_id: int) -> bool:
        with self.sessions() as db:
            return bool(db.scalar(select(Alert.drill).where(Alert.id == alert_id)))

    async def _mark_drill(self, job: _Job) -> _Job:
        """A notice about an alert raised during a drill says so, whoever built the notice."""
        if job.notice.drill or job.notice.alert_id is None:
            return job
        try:
            drill = await asyncio.to_thread(self._drill_of, job.notice.alert_id)
        except SQLAlchemyError as exc:
            log.warning("drill flag of alert %s unknown: %s", job.notice.alert_id, exc)
            return job
        if not drill:
            return job
        return replace(job, notice=job.notice.model_copy(update={"drill": True}))

    async def _deliver(self, job: _Job) -> None:
        job = await self._mark_drill(job)
        error = ""
        attempt = 0
        for attempt in range(1, self.attempts + 1):
            try:
                await self._send(job)
            except DeliveryError as exc:
                error = exc.detail
                log.warning(
                    "notify %s (alert %s) attempt %d failed: %s",
                    job.channel,
                    job.notice.alert_id,
                    attempt,
                    exc.detail,
                )
                if attempt < self.attempts:
                    await asyncio.sleep(self.backoff_s * 2 ** (attempt - 1))
                continue
            self.sent[job.channel] += 1
            await self._record(job, ok=True, attempts=attempt, error=None)
            return
        self.failed[job.channel] += 1
        await self._record(job, ok=False, attempts=attempt, error=error)

    async def _send(self, job: _Job) -> None:
        if job.users:
            try:
                await asyncio.to_thread(self._store_for_users, job.users, job.notice)
            except SQLAlchemyError as exc:
                raise DeliveryError(job.channel, f"database: {exc}") from exc
            self.hub.publish(
                {
                    "type": "notification",
                    "roles": [],
                    "users": list(job.users),
                    "notice": job.notice.model_dump(mode="json"),
                }
            )
            return
        if job.url is not None:
            await post_json(job.channel, job.url, job.notice.model_dump(mode="json"), 10.0)
            return
        channel = self.channels[job.channel]
        if isinstance(channel, WebhookChannel):
            await send_webhook(job.channel, channel, job.notice)
        elif isinstance(channel, EmailChannel):
            await send_email(job.channel, channel, job.notice)
        elif isinstance(channel, InAppChannel):
            try:
                await asyncio.to_thread(self._store_inapp, channel, job.notice)
            except SQLAlchemyError as exc:
                raise DeliveryError(job.channel, f"database: {exc}") from exc
            self.hub.publish(
                {
                    "type": "notification",
                    "roles": list(channel.roles),
                    "notice": job.notice.model_dump(mode="json"),
                }
            )

    def _store_inapp(self, channel: InAppChannel, notice: Notice) -> None:
        self._store(notice, [{"role": role} for role in channel.roles])

    def _store_for_users(self, users: tuple[str, ...], notice: Notice) -> None:
        self._store(notice, [{"role": PERSONAL, "username": user} for user in users])

    def _store(self, notice: Notice, recipients: list[dict[str, str]]) -> None:
        now = datetime.now(UTC)
        title_en, title_zh = (t[:200] for t in notice.titles())
        with self.sessions.begin() as db:
            for recipient in recipients:
                db.add(
                    Notification(
                        ts=now,
                        alert_id=notice.alert_id,
                        severity=notice.severity,
                        title_en=title_en,
                        title_zh=title_zh,
                        reason=notice.kind,
                        **recipient,
                    )
                )

    async def _record(self, job: _Job, *, ok: bool, attempts: int, error: str | None) -> None:
        if job.notice.alert_id is None:
            return
        alert_id = job.notice.alert_id

        def write() -> None:
            with self.sessions.begin() as db:
                alerts.record(
                    db,
                    alert_id,
                    "notified" if ok else "notify_failed",
                    alerts.SYSTEM,
                    datetime.now(UTC),
                    detail={
                        "channel": job.channel,
                        "reason": job.notice.kind,
                        "attempts": attempts,
                        **({"error": error} if error else {}),
                    },
                )

        try:
            await asyncio.to_thread(write)
        except alerts.AlertNotFound:
            log.warning("alert %s vanished before its notification was recorded", alert_id)
        except SQLAlchemyError as exc:
            log.error("delivery of %s for alert %s not recorded: %s", job.channel, alert_id, exc)

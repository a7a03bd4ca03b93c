"""Delivery over each channel type. Each ``send_*`` raises :class:`DeliveryError` on failure."""

from __future__ import annotations

import asyncio
import smtplib
from email.message import EmailMessage
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict

from cloud.alerts.views import AlertOut
from cloud.settings import EmailChannel, WebhookChannel


class DeliveryError(RuntimeError):
    def __init__(self, channel: str, detail: str) -> None:
        self.channel = channel
        self.detail = detail
        super().__init__(f"{channel}: {detail}")


DRILL_PREFIX = "[演练 DRILL] "


class Notice(BaseModel):
    """What a notification says, on every channel (webhook bodies are this as JSON)."""

    model_config = ConfigDict(frozen=True)

    kind: str  # raised | reopened | escalated | whistle | rule | test
    alert_id: int | None
    site: str
    rule_id: str
    subject: str
    severity: str
    status: str
    title_en: str
    title_zh: str
    tier: int = 0
    zone: str | None = None
    building: str | None = None
    ts: str
    note: str | None = None
    drill: bool = False
    """About an exercise (a drill of cloud.risk): every channel says so first."""

    @property
    def subject_line(self) -> str:
        return (
            f"{DRILL_PREFIX if self.drill else ''}"
            f"[Linli {self.severity.upper()}] {self.title_en} / {self.title_zh} "
            f"— {self.site}/{self.subject} ({self.kind})"
        )

    def titles(self) -> tuple[str, str]:
        """(English, Chinese) titles as shown in the app: drills marked as such."""
        if not self.drill:
            return self.title_en, self.title_zh
        return DRILL_PREFIX + self.title_en, DRILL_PREFIX + self.title_zh


def notice_of(alert: AlertOut, kind: str, *, note: str | None = None) -> Notice:
    return Notice(
        kind=kind,
        alert_id=alert.id,
        site=alert.site,
        rule_id=alert.rule_id,
        subject=alert.subject,
        severity=alert.severity.value,
        status=alert.status.value,
        title_en=alert.title_en,
        title_zh=alert.title_zh,
        tier=alert.escalation_tier,
        zone=alert.zone,
        building=alert.building,
        ts=alert.last_seen.isoformat(),
        note=note,
        drill=alert.drill,
    )


async def send_webhook(name: str, channel: WebhookChannel, notice: Notice) -> None:
    await post_json(name, channel.url, notice.model_dump(mode="json"), channel.timeout_s)


async def post_json(name: str, url: str, body: dict[str, Any], timeout_s: float) -> None:
    try:
        async with httpx.AsyncClient(timeout=timeout_s) as client:
            response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        raise DeliveryError(name, f"{type(exc).__name__}: {exc}") from exc
    if response.status_code >= 300:
        raise DeliveryError(name, f"HTTP {response.status_code} from {url}")


def _email(channel: EmailChannel, notice: Notice) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = notice.subject_line
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    title_en, title_zh = notice.titles()
    lines = [
        f"{title_en} / {title_zh}",
        "",
        f"Severity: {notice.severity}",
        f"Status:   {notice.status}",
        f"Site:     {notice.site}",
        f"Subject:  {notice.subject}",
        f"Zone:     {notice.zone or '-'}",
        f"Rule:     {notice.rule_id}",
        f"Alert:    #{notice.alert_id}",
        f"Time:     {notice.ts}",
    ]
    if notice.note:
        lines += ["", notice.note]
    msg.set_content("\n".join(lines) + "\n")
    return msg


def _send_email_sync(channel: EmailChannel, notice: Notice) -> None:
    with smtplib.SMTP(channel.host, channel.port, timeout=channel.timeout_s) as smtp:
        if channel.starttls:
            smtp.starttls()
        if channel.username and channel.password:
            smtp.login(channel.username, channel.password)
        smtp.send_message(_email(channel, notice))


async def send_email(name: str, channel: EmailChannel, notice: Notice) -> None:
    try:
        await asyncio.to_thread(_send_email_sync, channel, notice)
    except (OSError, smtplib.SMTPException) as exc:
        raise DeliveryError(name, f"{type(exc).__name__}: {exc}") from exc

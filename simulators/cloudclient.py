"""The little of the cloud API the scenario checker needs: the alerts of a site.

``GET /api/alerts?site=SITE`` with a bearer token (``--token`` or ``LINLI_TOKEN``). The answer
may be a JSON list of alerts or an object with an ``items`` list; each alert carries at least
``id``, ``site``, ``rule_id`` (or ``rule``), ``severity`` and ``subject``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import httpx

from simulators.errors import SimulatorError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CloudAlert:
    id: int | str
    site: str | None
    rule: str
    severity: str
    subject: str


def parse_alerts(body: Any) -> list[CloudAlert]:
    """Alerts from an ``/api/alerts`` answer; entries without the needed fields are skipped."""
    items = body.get("items", body.get("alerts")) if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise SimulatorError("GET /api/alerts did not answer with a list of alerts")
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        rule = item.get("rule_id", item.get("rule"))
        ident, severity, subject = item.get("id"), item.get("severity"), item.get("subject")
        if not (isinstance(ident, int | str) and isinstance(rule, str)):
            log.warning("alert without id or rule skipped: %r", item)
            continue
        if not (isinstance(severity, str) and isinstance(subject, str)):
            log.warning("alert %s without severity or subject skipped", ident)
            continue
        site = item.get("site")
        out.append(
            CloudAlert(ident, site if isinstance(site, str) else None, rule, severity, subject)
        )
    return out


class CloudClient:
    """``async with CloudClient(url, token) as cloud: await cloud.alerts(site)``.

    ``transport`` lets a test talk to an app in-process (``httpx.ASGITransport``).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), headers=headers, transport=transport, timeout=timeout
        )

    async def __aenter__(self) -> CloudClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def alerts(self, site: str) -> list[CloudAlert]:
        try:
            response = await self._http.get("/api/alerts", params={"site": site, "limit": 1000})
        except httpx.HTTPError as exc:
            raise SimulatorError(f"GET /api/alerts failed: {exc}") from exc
        if response.status_code in (401, 403):
            raise SimulatorError(
                f"GET /api/alerts: {response.status_code}; give a token with --token or LINLI_TOKEN"
            )
        if response.status_code != 200:
            raise SimulatorError(f"GET /api/alerts: HTTP {response.status_code}: {response.text}")
        try:
            body = response.json()
        except ValueError as exc:
            raise SimulatorError("GET /api/alerts did not answer JSON") from exc
        return [a for a in parse_alerts(body) if a.site in (None, site)]

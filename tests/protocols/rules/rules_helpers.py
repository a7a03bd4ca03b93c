"""Helpers for rule tests: a clock and an observation factory (no services needed).

Imported as ``from tests.protocols.rules.rules_helpers import Make``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from protocols.kinds import DeviceKind
from protocols.messages import AccessDecision, AccessKind
from protocols.rules import Observation

T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)  # a Monday, 20:00 in Asia/Shanghai


@dataclass
class Make:
    """Builds validated observations at ``T0 + seconds``."""

    site: str = "site1"
    gateway: str = "gw1"

    def at(self, seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    def reading(
        self,
        seconds: float,
        device: str,
        kind: DeviceKind | None,
        metric: str,
        value: float | bool,
        *,
        zone: str | None = "z1",
        building: str | None = "b1",
        historical: bool = False,
        tags: frozenset[str] = frozenset(),
        site: str | None = None,
    ) -> Observation:
        return Observation(
            ts=self.at(seconds),
            site=site or self.site,
            gateway=self.gateway,
            device=device,
            kind=kind,
            zone=zone,
            building=building,
            tags=tags,
            metric=metric,
            value=value,
            historical=historical,
        )

    def access(
        self,
        seconds: float,
        door: str,
        access: AccessKind,
        *,
        decision: AccessDecision = AccessDecision.NONE,
        reason: str = "none",
        person: str | None = None,
        zone: str | None = "z1",
        historical: bool = False,
    ) -> Observation:
        return Observation(
            ts=self.at(seconds),
            site=self.site,
            gateway=self.gateway,
            device=door,
            kind=DeviceKind.DOOR_LOCK,
            zone=zone,
            access=access,
            decision=decision,
            reason=reason,
            person=person,
            historical=historical,
        )

    def event(
        self,
        seconds: float,
        device: str,
        kind: DeviceKind | None,
        event: str,
        *,
        zone: str | None = "z1",
        historical: bool = False,
    ) -> Observation:
        return Observation(
            ts=self.at(seconds),
            site=self.site,
            gateway=self.gateway,
            device=device,
            kind=kind,
            zone=zone,
            event=event,
            historical=historical,
        )

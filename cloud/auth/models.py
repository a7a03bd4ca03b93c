"""Roles, the authenticated principal and the accounts settings (pure, no I/O)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Role(StrEnum):
    """Who a user is in the community. ``admin`` passes every role check."""

    ADMIN = "admin"  # operator: users, roles, everything
    MANAGER = "manager"  # property manager: alerts, devices, registry, reports
    GUARD = "guard"  # security: gate terminal, doors, access alerts, visitor passes
    RESPONDER = "responder"  # outside department (fire, police): sees and works assigned alerts
    RESIDENT = "resident"  # own visitor passes, own notifications
    VIEWER = "viewer"  # read-only wall screen


ALL_ROLES: frozenset[Role] = frozenset(Role)
STAFF: frozenset[Role] = frozenset({Role.ADMIN, Role.MANAGER, Role.GUARD, Role.RESPONDER})
"""People who act on alerts and doors."""

Locale = Literal["zh-CN", "en"]
Username = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.\-@]{2,64}$")]


class Principal(BaseModel):
    """The authenticated user of one request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    username: str
    role: Role
    display_name: str
    locale: Locale = "zh-CN"

    def has_role(self, *roles: Role) -> bool:
        return self.role is Role.ADMIN or self.role in roles


class AuthSettings(BaseModel):
    """Accounts settings. The app factory puts one on ``app.state.auth_settings``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    session_ttl_s: int = Field(
        12 * 3600, ge=60, le=30 * 86400, description="Lifetime of a login token/cookie"
    )
    cookie_name: str = Field("linli_session", pattern=r"^[A-Za-z0-9_]{1,40}$")
    cookie_secure: bool = Field(
        False, description="Set the Secure flag on the session cookie (true behind HTTPS)"
    )
    login_max_failures: int = Field(
        5, ge=1, le=100, description="Failed logins per username+IP before a lockout"
    )
    login_window_s: int = Field(
        300, ge=1, le=86400, description="Window for counting failures, and lockout length"
    )
    min_password_length: int = Field(10, ge=8, le=128)

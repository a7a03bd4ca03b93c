"""Routes: login/logout/me, user management (admin, audited) and the audit log."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from cloud.auth import audit, service
from cloud.auth.deps import (
    Admin,
    AnyUser,
    DbSession,
    auth_settings,
    login_limiter,
    public,
    require_roles,
    token_of,
)
from cloud.auth.models import Locale, Principal, Role, Username
from cloud.auth.tables import User

log = logging.getLogger(__name__)

router = APIRouter(tags=["auth"])


class Api(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LoginIn(Api):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class LoginOut(Api):
    token: str
    expires_at: datetime
    user: Principal


class UserIn(Api):
    username: Username
    password: Annotated[str, Field(min_length=1, max_length=256)]
    role: Role
    display_name: Annotated[str, Field(max_length=128)] | None = None
    locale: Locale = "zh-CN"


class UserOut(Api):
    username: str
    display_name: str
    role: Role
    locale: str
    active: bool
    created_at: datetime


class RoleIn(Api):
    role: Role


class AuditOut(Api):
    id: int
    ts: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _user_out(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        display_name=user.display_name,
        role=Role(user.role),
        locale=user.locale,
        active=user.active,
        created_at=user.created_at,
    )


@router.post("/api/auth/login", dependencies=[Depends(public)])
def login(body: LoginIn, request: Request, response: Response, db: DbSession) -> LoginOut:
    """Check a password; answer a token and set the session cookie. Rate limited per
    username+IP: after too many failures, 429 with ``Retry-After``."""
    settings = auth_settings(request)
    limiter = login_limiter(request)
    ip = _client_ip(request)
    wait = limiter.retry_after(body.username, ip, time.monotonic())
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed logins; try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    user = service.authenticate(db, body.username, body.password)
    if user is None:
        limiter.failed(body.username, ip, time.monotonic())
        log.info("failed login for %r from %s", body.username, ip)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong username or password")
    limiter.succeeded(body.username, ip)
    token, expires = service.issue_token(db, user, settings.session_ttl_s, ip)
    db.commit()
    response.set_cookie(
        settings.cookie_name,
        token,
        max_age=settings.session_ttl_s,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    return LoginOut(token=token, expires_at=expires, user=service.principal_of(user))


@router.post("/api/auth/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(who: AnyUser, request: Request, db: DbSession) -> Response:
    token = token_of(request)
    if token:
        service.revoke_token(db, token)
        db.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(auth_settings(request).cookie_name, path="/")
    log.info("%s signed out", who.username)
    return response


@router.get("/api/auth/me")
def me(who: AnyUser) -> Principal:
    return who


class PasswordIn(Api):
    current: Annotated[str, Field(min_length=1, max_length=256)]
    new: Annotated[str, Field(min_length=1, max_length=256)]


class ActiveIn(Api):
    active: bool


@router.post("/api/auth/password", status_code=status.HTTP_204_NO_CONTENT)
def change_password(body: PasswordIn, who: AnyUser, request: Request, db: DbSession) -> Response:
    """Change one's own password (the current one is required). Every session ends, so sign
    in again. Failures count towards the login rate limit."""
    limiter = login_limiter(request)
    ip = _client_ip(request)
    wait = limiter.retry_after(who.username, ip, time.monotonic())
    if wait is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "too many failed attempts; try again later",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    try:
        changed = service.change_password(
            db,
            who.username,
            body.current,
            body.new,
            min_password_length=auth_settings(request).min_password_length,
        )
    except service.WeakPassword as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    if not changed:
        limiter.failed(who.username, ip, time.monotonic())
        raise HTTPException(status.HTTP_403_FORBIDDEN, "current password is wrong")
    audit.record(db, who, "user.password", who.username, {})
    db.commit()
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(auth_settings(request).cookie_name, path="/")
    return response


@router.get("/api/users")
def list_users(who: Admin, db: DbSession) -> list[UserOut]:
    return [_user_out(u) for u in db.scalars(select(User).order_by(User.id))]


@router.post("/api/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserIn, who: Admin, db: DbSession) -> UserOut:
    try:
        user = service.create_user(
            db,
            body.username,
            body.password,
            body.role,
            display_name=body.display_name,
            locale=body.locale,
        )
    except service.UserExists as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except service.WeakPassword as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
    audit.record(db, who, "user.create", user.username, {"role": body.role.value})
    db.commit()
    return _user_out(user)


@router.put("/api/users/{username}/role")
def change_role(username: str, body: RoleIn, who: Admin, db: DbSession) -> UserOut:
    try:
        user, previous = service.set_role(db, username, body.role)
    except service.UnknownUser as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    if previous is Role.ADMIN and service.count_admins(db) == 0:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "the last admin cannot lose the role")
    audit.record(db, who, "user.role", username, {"from": previous.value, "to": body.role.value})
    db.commit()
    return _user_out(user)


@router.put("/api/users/{username}/active")
def set_active(username: str, body: ActiveIn, who: Admin, db: DbSession) -> UserOut:
    """Disable (every session ends at once) or re-enable an account. Audited."""
    try:
        user = service.set_active(db, username, body.active)
    except service.UnknownUser as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    if service.count_admins(db) == 0:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, "the last admin cannot be disabled")
    audit.record(db, who, "user.active", username, {"active": body.active})
    db.commit()
    return _user_out(user)


@router.get("/api/audit", dependencies=[Depends(require_roles(Role.MANAGER))])
def audit_log(
    db: DbSession,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AuditOut]:
    """Newest first. Admins and managers."""
    rows = audit.entries(db, action=action, actor=actor, target=target, limit=limit)
    return [
        AuditOut(id=r.id, ts=r.ts, actor=r.actor, action=r.action, target=r.target, detail=r.detail)
        for r in rows
    ]

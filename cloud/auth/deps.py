"""The FastAPI dependencies every router uses: a DB session and role checks.

Contract with the app factory (``cloud.api``):

* ``app.state.sessionmaker`` (a ``sessionmaker[Session]``) or ``app.state.engine`` (an Engine)
  gives the database;
* ``app.state.auth_settings`` (:class:`AuthSettings`) is optional (defaults otherwise).

Usage in a router::

    Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]

    @router.post("/api/alerts/{id}/ack")
    def ack(id: int, who: Manager, db: DbSession) -> ...

or for a whole router: ``APIRouter(dependencies=[Depends(require_roles(Role.MANAGER))])``.
``admin`` passes every check. A route that is deliberately open (login, health) declares
``dependencies=[Depends(public)]`` so the role-matrix test can tell it from a forgotten check.

Tokens come from ``Authorization: Bearer …`` or the session cookie (browsers); the same
dependency works on WebSocket routes (it closes with 1008 instead of answering 401/403).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, WebSocketException, status
from fastapi.routing import RouteContext
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

from cloud.auth.models import ALL_ROLES, STAFF, AuthSettings, Principal, Role
from cloud.auth.service import LoginLimiter, principal_for_token

__all__ = [
    "ALL_ROLES",
    "STAFF",
    "Admin",
    "AnyUser",
    "AuthSettings",
    "DbSession",
    "Principal",
    "Role",
    "RouteAccess",
    "Staff",
    "auth_settings",
    "get_session",
    "login_limiter",
    "public",
    "require_roles",
    "route_access",
    "token_of",
]

ROLES_MARK = "__linli_roles__"
PUBLIC_MARK = "__linli_public__"


def _sessionmaker(conn: HTTPConnection) -> sessionmaker[Session]:
    state = conn.app.state
    maker: sessionmaker[Session] | None = getattr(state, "sessionmaker", None)
    if maker is None:
        engine: Engine | None = getattr(state, "engine", None)
        if engine is None:
            raise RuntimeError("app.state.sessionmaker or app.state.engine must be set")
        maker = sessionmaker(engine, expire_on_commit=False)
        state.sessionmaker = maker
    return maker


def get_session(conn: HTTPConnection) -> Iterator[Session]:
    """One session per request (shared by all dependencies of that request); closed after."""
    with _sessionmaker(conn)() as session:
        yield session


DbSession = Annotated[Session, Depends(get_session)]


def auth_settings(conn: HTTPConnection) -> AuthSettings:
    settings: AuthSettings | None = getattr(conn.app.state, "auth_settings", None)
    if settings is None:
        settings = AuthSettings()
        conn.app.state.auth_settings = settings
    return settings


def login_limiter(conn: HTTPConnection) -> LoginLimiter:
    limiter: LoginLimiter | None = getattr(conn.app.state, "login_limiter", None)
    if limiter is None:
        settings = auth_settings(conn)
        limiter = LoginLimiter(settings.login_max_failures, settings.login_window_s)
        conn.app.state.login_limiter = limiter
    return limiter


def _same_origin(conn: HTTPConnection) -> bool:
    """A browser's WebSocket handshake carries its page's Origin; a cookie is accepted only
    from pages of this host (no cross-site WebSocket hijacking)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True  # not a browser
    return urlsplit(origin).netloc == conn.headers.get("host", "")


def token_of(conn: HTTPConnection) -> str | None:
    """The bearer token, else the session cookie, else (WebSocket only) ``?token=``."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    cookie = conn.cookies.get(auth_settings(conn).cookie_name)
    if cookie and (conn.scope["type"] != "websocket" or _same_origin(conn)):
        return cookie
    if conn.scope["type"] == "websocket":
        return conn.query_params.get("token") or None
    return None


def _deny(conn: HTTPConnection, code: int, detail: str) -> Exception:
    if conn.scope["type"] == "websocket":
        return WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason=detail)
    headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
    return HTTPException(status_code=code, detail=detail, headers=headers)


def require_roles(*roles: Role) -> Callable[..., Principal]:
    """A dependency returning the request's :class:`Principal` when its role is one of
    ``roles`` (or admin); 401 without a valid token, 403 with the wrong role.

    ``require_roles()`` with no roles admits any signed-in user.
    """
    allowed = frozenset(Role(r) for r in roles) or ALL_ROLES

    def dependency(conn: HTTPConnection, session: DbSession) -> Principal:
        token = token_of(conn)
        principal = principal_for_token(session, token) if token else None
        if principal is None:
            raise _deny(conn, status.HTTP_401_UNAUTHORIZED, "not signed in or session expired")
        if not principal.has_role(*allowed):
            raise _deny(conn, status.HTTP_403_FORBIDDEN, f"role {principal.role} not allowed")
        conn.state.principal = principal
        return principal

    setattr(dependency, ROLES_MARK, allowed | {Role.ADMIN})
    dependency.__name__ = "require_" + "_".join(sorted(allowed))
    return dependency


def public() -> None:
    """Marks a route as deliberately open to anyone (login, health, static pages)."""


setattr(public, PUBLIC_MARK, True)

AnyUser = Annotated[Principal, Depends(require_roles())]
Staff = Annotated[Principal, Depends(require_roles(*STAFF))]
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]


@dataclass(frozen=True)
class RouteAccess:
    """Who may call a route: ``public`` (marked with :func:`public`) and/or the roles admitted
    by its role checks (the intersection when there are several). Neither = a forgotten check."""

    public: bool
    roles: frozenset[Role] | None

    @property
    def checked(self) -> bool:
        return self.public or self.roles is not None


def route_access(route: BaseRoute | RouteContext) -> RouteAccess:
    """Read the role checks of a route from its dependency tree (router-level dependencies
    included). Pass the items of ``fastapi.routing.iter_route_contexts(app.routes)``: FastAPI
    keeps included routers nested, so ``app.routes`` alone does not list every route."""
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return RouteAccess(public=False, roles=None)
    found: list[frozenset[Role]] = []
    is_public = False
    stack: list[Any] = [dependant]
    while stack:
        dep = stack.pop()
        call = getattr(dep, "call", None)
        marked = getattr(call, ROLES_MARK, None)
        if marked is not None:
            found.append(marked)
        if getattr(call, PUBLIC_MARK, False):
            is_public = True
        stack.extend(dep.dependencies)
    roles: frozenset[Role] | None = None
    for item in found:
        roles = item if roles is None else roles & item
    return RouteAccess(public=is_public, roles=roles)

"""Accounts: users, passwords, login tokens, the login rate limiter and ``create-admin``.

Functions take a SQLAlchemy :class:`~sqlalchemy.orm.Session` and never commit, except
:func:`create_admin_cli`, which owns its own engine.
"""

from __future__ import annotations

import argparse
import getpass
import hashlib
import logging
import os
import secrets
import sys
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cloud.auth.models import AuthSettings, Locale, Principal, Role
from cloud.auth.passwords import generate_password, hash_password, verify_password
from cloud.auth.tables import LoginSession, User

log = logging.getLogger(__name__)


class AuthError(Exception):
    """Base of every accounts error."""


class UserExists(AuthError):
    def __init__(self, username: str) -> None:
        super().__init__(f"user {username!r} already exists")
        self.username = username


class UnknownUser(AuthError):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user {username!r}")
        self.username = username


class WeakPassword(AuthError):
    def __init__(self, reason: str) -> None:
        super().__init__(f"password refused: {reason}")
        self.reason = reason


def _check_password(password: str, username: str, min_length: int) -> None:
    if len(password) < min_length:
        raise WeakPassword(f"shorter than {min_length} characters")
    if password.lower() == username.lower():
        raise WeakPassword("equal to the username")
    if len(set(password)) < 4:
        raise WeakPassword("too few distinct characters")


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        role=Role(user.role),
        display_name=user.display_name,
        locale="en" if user.locale == "en" else "zh-CN",
    )


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    *,
    display_name: str | None = None,
    locale: Locale = "zh-CN",
    min_password_length: int = AuthSettings().min_password_length,
) -> User:
    """Add a user (flushed, not committed). Raises :class:`UserExists`, :class:`WeakPassword`."""
    _check_password(password, username, min_password_length)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserExists(username)
    user = User(
        username=username,
        display_name=display_name or username,
        role=Role(role).value,
        locale=locale,
        password_hash=hash_password(password),
        active=True,
        created_at=datetime.now(UTC),
    )
    session.add(user)
    try:
        session.flush()
    except IntegrityError as exc:
        raise UserExists(username) from exc
    return user


def create_admin(
    session: Session,
    username: str,
    password: str | None = None,
    *,
    display_name: str | None = None,
    locale: Locale = "zh-CN",
) -> tuple[User, str]:
    """Create an admin; with no password, generate one. Returns the user and the password."""
    chosen = password if password is not None else generate_password()
    user = create_user(
        session, username, chosen, Role.ADMIN, display_name=display_name, locale=locale
    )
    return user, chosen


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def set_role(session: Session, username: str, role: Role) -> tuple[User, Role]:
    """Change a user's role; returns the user and the previous role."""
    user = get_user(session, username)
    if user is None:
        raise UnknownUser(username)
    previous = Role(user.role)
    user.role = Role(role).value
    session.flush()
    return user, previous


def change_password(
    session: Session,
    username: str,
    current: str,
    new: str,
    *,
    min_password_length: int = AuthSettings().min_password_length,
) -> bool:
    """Replace a password after checking the current one; False when it does not match.
    Every other session of the user ends (flushed, not committed)."""
    user = authenticate(session, username, current)
    if user is None:
        return False
    _check_password(new, username, min_password_length)
    user.password_hash = hash_password(new)
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    session.flush()
    return True


def set_active(session: Session, username: str, active: bool) -> User:
    """Enable or disable a user; disabling ends every session of theirs at once."""
    user = get_user(session, username)
    if user is None:
        raise UnknownUser(username)
    user.active = active
    if not active:
        session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user whose password matches, else None (constant work either way)."""
    user = get_user(session, username)
    ok = verify_password(user.password_hash if user else None, password)
    if user is None or not ok or not user.active:
        return None
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session, user: User, ttl_s: int, client_ip: str | None = None
) -> tuple[str, datetime]:
    """A new opaque login token (for the bearer header or the cookie) and its expiry."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=ttl_s)
    session.add(
        LoginSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            created_at=now,
            expires_at=expires,
            client_ip=client_ip,
        )
    )
    # Expired sessions are removed as new ones are made; the table stays small.
    session.execute(delete(LoginSession).where(LoginSession.expires_at < now))
    session.flush()
    return token, expires


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)  # SQLite drops the zone


def principal_for_token(session: Session, token: str) -> Principal | None:
    """The principal of a live token; None when unknown, expired or the user is inactive."""
    row = session.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == _token_hash(token))
    ).first()
    if row is None:
        return None
    login, user = row
    if _aware(login.expires_at) <= datetime.now(UTC) or not user.active:
        return None
    return principal_of(user)


def revoke_token(session: Session, token: str) -> bool:
    result = session.execute(
        delete(LoginSession).where(LoginSession.token_hash == _token_hash(token))
    )
    return bool(getattr(result, "rowcount", 0))


def count_admins(session: Session) -> int:
    """Active admins."""
    query = select(func.count(User.id)).where(User.role == Role.ADMIN, User.active.is_(True))
    return int(session.scalar(query) or 0)


class LoginLimiter:
    """Failed logins per (username, client IP): after ``max_failures`` within ``window_s``
    further attempts are refused until the window has passed. Memory is bounded."""

    def __init__(self, max_failures: int, window_s: float, max_keys: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        return times

    def retry_after(self, username: str, ip: str, now: float) -> float | None:
        """Seconds until another attempt is allowed, or None when allowed now."""
        key = (username.lower(), ip)
        with self._lock:
            times = self._recent(key, now)
            if len(times) < self.max_failures:
                return None
            return max(times[0] + self.window_s - now, 0.001)

    def failed(self, username: str, ip: str, now: float) -> None:
        key = (username.lower(), ip)
        with self._lock:
            times = self._recent(key, now)
            times.append(now)
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, username: str, ip: str) -> None:
        with self._lock:
            self._failures.pop((username.lower(), ip), None)


def create_admin_cli(argv: Sequence[str]) -> int:
    """``linli cloud create-admin``: make the first (or another) admin account.

    The password is read from ``--password-stdin``, typed at a prompt, or generated with
    ``--generate`` (then printed once). Nothing has a default password.
    """
    from cloud.db import create_schema, make_engine

    parser = argparse.ArgumentParser(
        prog="linli cloud create-admin", description="Create an administrator account."
    )
    parser.add_argument(
        "--db",
        default=os.environ.get("LINLI_DB_URL", os.environ.get("LINLI_DATABASE_URL")),
        help="SQLAlchemy database URL (default: $LINLI_DB_URL)",
    )
    parser.add_argument("username", nargs="?", help="the new admin's user name")
    parser.add_argument(
        "--username", dest="username_opt", metavar="USERNAME", help=argparse.SUPPRESS
    )
    parser.add_argument("--display-name", default=None)
    parser.add_argument("--locale", choices=["zh-CN", "en"], default="zh-CN")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--password-stdin", action="store_true", help="read one line from stdin")
    source.add_argument("--generate", action="store_true", help="generate and print a password")
    args = parser.parse_args(list(argv))
    args.username = args.username or args.username_opt
    if not args.username:
        parser.error("a USERNAME is required")
    if not args.db:
        print("create-admin: no database: pass --db URL or set LINLI_DB_URL", file=sys.stderr)
        return 2
    if args.password_stdin:
        password: str | None = sys.stdin.readline().rstrip("\n")
    elif args.generate:
        password = None
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            print("create-admin: passwords differ", file=sys.stderr)
            return 1
    engine = make_engine(args.db)
    try:
        create_schema(engine)
        with Session(engine) as session:
            try:
                user, chosen = create_admin(
                    session,
                    args.username,
                    password,
                    display_name=args.display_name,
                    locale=args.locale,
                )
            except AuthError as exc:
                print(f"create-admin: {exc}", file=sys.stderr)
                return 1
            from cloud.auth.audit import SYSTEM, record

            record(session, SYSTEM, "user.create", user.username, {"role": Role.ADMIN.value})
            session.commit()
    finally:
        engine.dispose()
    print(f"admin {args.username!r} created")
    if password is None:
        print(f"password: {chosen}")
    return 0

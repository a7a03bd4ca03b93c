"""What the governance routers share: the clock, error mapping, role annotations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, status
from sqlalchemy.orm import Session
from starlette.requests import HTTPConnection

from cloud.auth.deps import STAFF, Principal, Role, require_roles
from cloud.governance.errors import Invalid, NotFound, Refused
from cloud.governance.incidents import CLOSE_OVERRIDE_AFTER
from cloud.governance.states import IllegalTransition

CLOCK_STATE = "gov_clock"
"""``app.state.gov_clock``: a callable returning aware UTC now (tests inject a fake clock)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def clock(conn: HTTPConnection) -> datetime:
    fn: Callable[[], datetime] = getattr(conn.app.state, CLOCK_STATE, None) or utcnow
    return fn()


Now = Annotated[datetime, Depends(clock)]


def close_override_after(conn: HTTPConnection) -> timedelta:
    """``LINLI_GOV_CLOSE_OVERRIDE_AFTER_S`` of the app's settings (7 days unless set)."""
    settings = getattr(conn.app.state, "settings", None)
    if settings is None:
        return CLOSE_OVERRIDE_AFTER
    return timedelta(seconds=settings.gov_close_override_after_s)


OverrideAfter = Annotated[timedelta, Depends(close_override_after)]
AnyUser = Annotated[Principal, Depends(require_roles())]
Manager = Annotated[Principal, Depends(require_roles(Role.MANAGER))]
Worker = Annotated[Principal, Depends(require_roles(*STAFF))]
Reporter = Annotated[Principal, Depends(require_roles(Role.RESIDENT, Role.MANAGER, Role.GUARD))]
Resident = Annotated[Principal, Depends(require_roles(Role.RESIDENT))]
ResidentOrManager = Annotated[Principal, Depends(require_roles(Role.RESIDENT, Role.MANAGER))]
Participant = Annotated[Principal, Depends(require_roles(*STAFF, Role.RESIDENT))]
DepartmentOrManager = Annotated[Principal, Depends(require_roles(Role.RESPONDER, Role.MANAGER))]


@contextmanager
def http_errors(db: Session) -> Iterator[None]:
    """Governance errors as HTTP answers (the transaction rolled back):
    not found 404, invalid 422 naming the field, illegal transition 409 naming the allowed
    states, refused 403 (or 409 when it is a matter of order, e.g. closing unconfirmed)."""
    try:
        yield
    except NotFound as exc:
        db.rollback()
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except Invalid as exc:
        db.rollback()
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error"}],
        ) from exc
    except IllegalTransition as exc:
        db.rollback()
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except Refused as exc:
        db.rollback()
        code = status.HTTP_409_CONFLICT if exc.conflict else status.HTTP_403_FORBIDDEN
        raise HTTPException(code, str(exc)) from exc

"""The audit log of sensitive actions (door opened by hand, alert closed, faces enrolled or
erased, roles changed…).

:func:`record` adds the entry to the caller's session without committing, so the entry and the
action it describes commit (or roll back) together.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.auth.deps import Principal
from cloud.auth.tables import AuditEntry

SYSTEM = "system"
"""Actor name for actions taken by Linli itself (rules, escalation, CLI)."""


def record(
    session: Session,
    actor: Principal | str,
    action: str,
    target: str,
    detail: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add an audit entry to ``session`` (flushed, not committed: commit with your action).

    ``actor`` is the :class:`Principal` who acted, or a name such as :data:`SYSTEM`.
    ``action`` is a dotted verb (``door.open``, ``alert.close``, ``user.role``); ``detail`` must be
    JSON-serialisable (e.g. ``{"reason": "delivery"}``).
    """
    if not action or len(action) > 64:
        raise ValueError(f"audit action must be 1..64 characters, got {action!r}")
    entry = AuditEntry(
        ts=datetime.now(UTC),
        actor_id=actor.user_id if isinstance(actor, Principal) else None,
        actor=actor.username if isinstance(actor, Principal) else actor,
        action=action,
        target=target[:256],
        detail=dict(detail or {}),
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session,
    *,
    action: str | None = None,
    actor: str | None = None,
    target: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """Newest first, optionally filtered by exact action, actor or target."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    if target is not None:
        query = query.where(AuditEntry.target == target)
    return list(session.scalars(query))

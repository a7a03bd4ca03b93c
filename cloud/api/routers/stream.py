"""``/api/stream``: a WebSocket of live alerts, access events, notifications and incident changes.

Sign in with the session cookie, ``Authorization: Bearer``, or ``?token=``. ``?topics=alert,access``
narrows what is sent. Access events (faces, names) go to staff only; incident changes to those
who may see the incident (cloud.governance.live). The server sends ``{"type": "hello"}`` first,
then one JSON object per event.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, WebSocket, WebSocketDisconnect

from cloud.api.services import Svc
from cloud.auth.deps import STAFF, Principal, Role, require_roles

router = APIRouter(tags=["stream"])
AnyUser = Annotated[Principal, Depends(require_roles())]
TOPICS = frozenset({"alert", "access", "notification", "incident"})
AUDIENCE = ("roles", "users", "reporter")
"""Who an incident change is for: used to filter, not sent."""


@router.websocket("/api/stream")
async def stream(websocket: WebSocket, who: AnyUser, svc: Svc, topics: str | None = None) -> None:
    wanted = TOPICS if not topics else frozenset(t.strip() for t in topics.split(",")) & TOPICS
    if who.role not in STAFF:
        wanted = wanted - {"access"}
    await websocket.accept()
    async with svc.hub.subscribe(wanted) as sub:
        await websocket.send_json({"type": "hello", "topics": sorted(wanted), "user": who.username})
        receiver = asyncio.create_task(_drain(websocket))
        try:
            while not receiver.done():
                getter = asyncio.create_task(sub.get())
                done, _ = await asyncio.wait(
                    {getter, receiver}, return_when=asyncio.FIRST_COMPLETED
                )
                if getter not in done:
                    getter.cancel()
                    break
                event = getter.result()
                if _for(who, event):
                    await websocket.send_json(_outward(event))
        except WebSocketDisconnect:
            pass
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await receiver


def _for(who: Principal, event: dict[str, Any]) -> bool:
    """In-app notifications and incident changes go to the roles and users they name (admins
    see everything); a resident hears only of incidents they reported."""
    kind = event.get("type")
    if kind not in ("notification", "incident") or who.role is Role.ADMIN:
        return True
    if kind == "incident" and who.role is Role.RESIDENT:
        return bool(event.get("reporter")) and event.get("reporter") == who.username
    return who.role.value in event.get("roles", ()) or who.username in event.get("users", ())


def _outward(event: dict[str, Any]) -> dict[str, Any]:
    if event.get("type") != "incident":
        return event
    return {k: v for k, v in event.items() if k not in AUDIENCE}


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client messages so a disconnect is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()

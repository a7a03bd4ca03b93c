"""``/api/stream``: a WebSocket of live alerts, access events and notifications.

Sign in with the session cookie, ``Authorization: Bearer``, or ``?token=``. ``?topics=alert,access``
narrows what is sent. Access events (faces, names) go to staff only. The server sends
``{"type": "hello"}`` first, then one JSON object per event.
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
TOPICS = frozenset({"alert", "access", "notification"})


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
                    await websocket.send_json(event)
        except WebSocketDisconnect:
            pass
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect):
                await receiver


def _for(who: Principal, event: dict[str, Any]) -> bool:
    """In-app notifications go to the roles and users they name (admins see everything)."""
    if event.get("type") != "notification" or who.role is Role.ADMIN:
        return True
    return who.role.value in event.get("roles", ()) or who.username in event.get("users", ())


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) client messages so a disconnect is noticed at once."""
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.receive_text()

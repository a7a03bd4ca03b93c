"""``/health`` (alive), ``/ready`` (database, MQTT, ingest) and Prometheus ``/metrics``.

These are public on purpose (load balancers and Prometheus scrape them); they expose counts,
never data. Put them behind the network's own access rules in production.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from cloud.api.services import Svc
from cloud.auth.deps import public

router = APIRouter(tags=["system"], dependencies=[Depends(public)])


@router.get("/health", summary="The process is up")
def health() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/ready", summary="Database reachable, MQTT connected, ingest subscribed")
async def ready(svc: Svc, response: Response) -> dict[str, Any]:
    checks: dict[str, bool] = {}
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = True
    except SQLAlchemyError:
        checks["database"] = False
    if svc.publisher is not None:
        checks["mqtt_publisher"] = svc.publisher.connected.is_set()
    if svc.ingest is not None:
        checks["ingest"] = svc.ingest_ready.is_set()
    ok = all(checks.values())
    if not ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return {"status": "ready" if ok else "not ready", "checks": checks}


@router.get("/metrics", summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

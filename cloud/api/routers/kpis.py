"""KPIs for the console: open alerts by severity, mean time to acknowledge and to resolve."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from cloud.alerts import service
from cloud.alerts.views import Kpis
from cloud.auth.deps import DbSession, Principal, require_roles

router = APIRouter(prefix="/api/kpis", tags=["kpis"])
Reader = Annotated[Principal, Depends(require_roles())]


@router.get("", summary="Open by severity, MTTA and MTTR (seconds)")
def kpis(
    who: Reader, db: DbSession, site: str | None = None, since: datetime | None = None
) -> Kpis:
    return service.kpis(db, site, since)

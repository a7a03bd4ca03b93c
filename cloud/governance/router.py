"""Every governance route under ``/api/gov`` (the app includes this one router)."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.governance import routes_incidents, routes_orgs, routes_whistles

router = APIRouter()
for part in (routes_orgs.router, routes_incidents.router, routes_whistles.router):
    router.include_router(part)

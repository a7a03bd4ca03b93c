"""Every risk-governance route under ``/api/gov`` (the app includes this one router)."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.risk import routes_drills, routes_register

router = APIRouter()
for part in (routes_register.router, routes_drills.router):
    router.include_router(part)
